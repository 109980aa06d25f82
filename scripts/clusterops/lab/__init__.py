"""The local lab: Docker containers that behave like VMs (systemd, sshd, apt, own address)."""
