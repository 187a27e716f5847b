"""A real fleet on this machine for deploysim's executor: demo-service processes on loopback
(service.py), their lifecycle (fleet.py), a load generator (loadgen.py), a Prometheus server
scraping them (prometheus.py), and the ports, load and inventory file of `deploysim local`
(control.py; the commands are deploysim/cli/local.py). See docs/local-fleet.md.
"""

from .fleet import FleetError, LocalFleet
from .prometheus import PrometheusError, PrometheusServer

__all__ = ["FleetError", "LocalFleet", "PrometheusError", "PrometheusServer"]
