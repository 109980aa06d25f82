#!/bin/sh
# Where Ansible gets the vault password from by default (ansible.cfg: vault_password_file).
#
# For the lab, it prints the password scripts/init_secrets.py generated into
# .lab/vault-password. Other inventories have their own vault password: pass it with
# --vault-password-file FILE (or ANSIBLE_VAULT_PASSWORD_FILE). Without a lab this prints a
# marker that decrypts nothing, so Ansible still starts and names the file it cannot open.
lab_password="$(dirname "$0")/../.lab/vault-password"
if [ -r "$lab_password" ]; then
    exec cat "$lab_password"
fi
echo "no-lab-vault-password"
