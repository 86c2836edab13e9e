"""The demo site: a broker, the hub and simulated field devices on one machine.

It stands outside both ``hub`` and the agents and uses each from the outside (the hub never
imports an agent). ``gridward demo`` (entry point ``sitedemo.cli:register``) and
``python -m sitedemo`` run it.
"""
