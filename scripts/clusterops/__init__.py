"""Tooling around the Ansible project: the local lab, ansible-runner calls, inventory edits.

The command-line entry points live beside this package in scripts/ (lab.py, ...); they
stay thin and import from here so that every concern has one home.
"""
