"""The fleet as flat numpy arrays: which region, AZ and cell each host is in, and its share of its region's traffic."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .scenario.schema import Scenario


@dataclass(frozen=True)
class FleetLayout:
    """Hosts numbered region by region, AZ by AZ, cell by cell; all arrays have one entry per host."""

    region_names: tuple[str, ...]
    region_timezones: tuple[str, ...]
    region_weight: np.ndarray  # share of fleet-wide traffic, sums to 1
    host_region: np.ndarray  # int index into region_names
    host_az: np.ndarray  # global AZ index
    host_cell: np.ndarray  # global cell index
    host_weight: np.ndarray  # share of its region's requests; sums to 1 per region
    az_region: np.ndarray  # region index of each global AZ
    cell_az: np.ndarray  # global AZ index of each global cell
    az_names: tuple[str, ...]
    cell_names: tuple[str, ...]

    @property
    def n_hosts(self) -> int:
        return int(self.host_region.size)

    @property
    def n_regions(self) -> int:
        return len(self.region_names)

    def region_index(self, name: str) -> int:
        return self.region_names.index(name)

    def hosts_in_region(self, region: int) -> np.ndarray:
        """The region's hosts, ascending (read-only: one array per region, handed to every caller)."""
        return self._region_hosts[region]

    def region_shares(self, hosts: np.ndarray) -> tuple[tuple[int, float], ...]:
        """Per region the hosts are in (ascending), the region and the hosts' share of its traffic.
        Kept per host set: steps, batches and bakes ask about the same few sets all run long."""
        key = hosts.tobytes()
        shares = self._shares.get(key)
        if shares is None:
            shares = self._shares[key] = tuple(
                (r, self.host_weight[hosts[self.host_region[hosts] == r]].sum())
                for r in np.unique(self.host_region[hosts]).tolist())
        return shares

    @cached_property
    def _shares(self) -> dict[bytes, tuple[tuple[int, float], ...]]:
        return {}

    @cached_property
    def _region_hosts(self) -> tuple[np.ndarray, ...]:
        # Asked thousands of times a simulated month (every incident check, batch and SLA window).
        out = []
        for r in range(self.n_regions):
            hosts = np.flatnonzero(self.host_region == r)
            hosts.flags.writeable = False
            out.append(hosts)
        return tuple(out)


def host_names(layout: FleetLayout) -> tuple[str, ...]:
    """Every host's name, `{cell name}-h{k}` with k counted from 1 inside its cell (e.g.
    `us-east-1-az1-c1-h1`): how a real inventory refers to the policy's hosts."""
    names: list[str] = []
    seen: dict[int, int] = {}
    for cell in layout.host_cell.tolist():
        seen[cell] = seen.get(cell, 0) + 1
        names.append(f"{layout.cell_names[cell]}-h{seen[cell]}")
    return tuple(names)


def one_box_hosts(layout: FleetLayout, region: int, n_hosts: int) -> np.ndarray:
    """The region's one-box hosts: the first hosts of its first cell."""
    return layout.hosts_in_region(region)[:n_hosts]


def build_fleet(scenario: Scenario) -> FleetLayout:
    """Lay out every host of the scenario and give one-box hosts their configured traffic share."""
    regions = scenario.fleet.regions
    weights = np.array([r.traffic_weight for r in regions], dtype=float)
    host_region, host_az, host_cell = [], [], []
    az_region: list[int] = []
    cell_az: list[int] = []
    az_names: list[str] = []
    cell_names: list[str] = []
    for ri, region in enumerate(regions):
        for a in range(region.azs):
            az = len(az_region)
            az_region.append(ri)
            az_names.append(f"{region.name}-az{a + 1}")
            for c in range(region.cells_per_az):
                cell = len(cell_az)
                cell_az.append(az)
                cell_names.append(f"{region.name}-az{a + 1}-c{c + 1}")
                host_region += [ri] * region.hosts_per_cell
                host_az += [az] * region.hosts_per_cell
                host_cell += [cell] * region.hosts_per_cell
    host_region_a = np.array(host_region, dtype=np.int64)
    host_weight = np.zeros(host_region_a.size)
    share = _one_box_shares(scenario)
    for ri, region in enumerate(regions):
        idx = np.flatnonzero(host_region_a == ri)
        box = share.get(region.name)
        if box is None or idx.size < 2:
            host_weight[idx] = 1.0 / idx.size
        else:
            n_box, s = box
            n_box = min(n_box, idx.size - 1)
            host_weight[idx[:n_box]] = s / n_box
            host_weight[idx[n_box:]] = (1.0 - s) / (idx.size - n_box)
    return FleetLayout(
        region_names=tuple(r.name for r in regions),
        region_timezones=tuple(r.timezone for r in regions),
        region_weight=weights / weights.sum(),
        host_region=host_region_a,
        host_az=np.array(host_az, dtype=np.int64),
        host_cell=np.array(host_cell, dtype=np.int64),
        host_weight=host_weight,
        az_region=np.array(az_region, dtype=np.int64),
        cell_az=np.array(cell_az, dtype=np.int64),
        az_names=tuple(az_names),
        cell_names=tuple(cell_names),
    )


def _one_box_shares(scenario: Scenario) -> dict[str, tuple[int, float]]:
    shares: dict[str, tuple[int, float]] = {}
    for pipe in scenario.policy.pipelines.values():
        for stage in pipe.stages:
            if stage.one_box is not None and stage.one_box.traffic_share is not None:
                for region in stage.regions:
                    shares.setdefault(region, (stage.one_box.hosts, stage.one_box.traffic_share))
    return shares
