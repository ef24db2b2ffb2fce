"""Signal controllers with one interface: observe an intersection, choose its next green.

Each ``choose`` returns a position in ``Intersection.greens``; the twin handles yellow,
minimum green and emergency priority, so a controller cannot break those rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from .twin import Controller, Intersection, Observation

CONTROLLERS = ("fixed", "actuated", "maxpressure", "delaypressure")


class _Base:
    name = "base"

    def reset(self, intersections: list[Intersection]) -> None:
        return None


@dataclass
class Actuated(_Base):
    """Queue-clearance actuation: extend the green while its approaches still hold a standing
    queue, up to max_green; then serve the next green in the network's order with a queue.

    Counting every vehicle on long approaches (a plain gap detector on a whole lane) kept
    greens at max_green and doubled delay on cologne1; halted vehicles are the better call."""

    max_green: float = 30.0
    name: str = "actuated"

    def choose(self, inter: Intersection, obs: Observation) -> int:
        def demand(g: int) -> float:
            return sum(obs.lanes[lane].queue for lane in inter.phase_in[g] if lane in obs.lanes)

        if demand(obs.current) > 0 and obs.green_time < self.max_green:
            return obs.current
        n = len(inter.greens)
        for step in range(1, n):
            g = (obs.current + step) % n
            if demand(g) > 0:
                return g
        return obs.current


def phase_pressures(inter: Intersection, obs: Observation) -> list[float]:
    """Per green: queued vehicles on the incoming lanes it serves minus those on its outgoing."""
    lanes = obs.lanes
    out = []
    for ins, outs in zip(inter.phase_in, inter.phase_out, strict=True):
        p = sum(lanes[lane].queue for lane in ins if lane in lanes)
        p -= sum(lanes[lane].queue for lane in outs if lane in lanes)
        out.append(p)
    return out


def argmax_keep(scores: list[float], current: int) -> int:
    """Highest score; ties keep the current green (no needless yellow), then the lowest index."""
    best = max(scores)
    if scores[current] >= best:
        return current
    return scores.index(best)


@dataclass
class MaxPressure(_Base):
    """Varaiya's max-pressure: the green whose movements carry the highest pressure."""

    name: str = "maxpressure"

    def choose(self, inter: Intersection, obs: Observation) -> int:
        return argmax_keep(phase_pressures(inter, obs), obs.current)


@dataclass
class DelayPressure(_Base):
    """Our rule: max-pressure that also counts the vehicles still moving towards the line.

    Incoming lanes weigh halted vehicles 1 and vehicles moving in the detection zone
    `moving` (they reach the stop line within the next green, so serving them early saves a
    stop); outgoing queues subtract as in max-pressure. `wait` (weight of accumulated waiting
    time) and `switch` (bonus for keeping the current green) are kept for experiments: on one
    seed of cologne1/cologne3/ingolstadt1/grid4x4, moving=0.5 helped on all but ingolstadt1,
    while a switching bonus starved side streets (cologne3 delay 18 -> 600 s) unless waiting
    time was weighted too; see docs/signals.md."""

    moving: float = 0.5
    wait: float = 0.0
    out: float = 1.0
    switch: float = 0.0
    name: str = "delaypressure"

    def scores(self, inter: Intersection, obs: Observation) -> list[float]:
        lanes = obs.lanes
        res = []
        for ins, outs in zip(inter.phase_in, inter.phase_out, strict=True):
            s = 0.0
            for lane in ins:
                st = lanes.get(lane)
                if st is not None:
                    s += st.queue + self.moving * (st.count - st.queue) + self.wait * st.wait
            for lane in outs:
                st = lanes.get(lane)
                if st is not None:
                    s -= self.out * st.queue
            res.append(s)
        return res

    def choose(self, inter: Intersection, obs: Observation) -> int:
        sc = self.scores(inter, obs)
        sc[obs.current] += self.switch
        return argmax_keep(sc, obs.current)


def make(name: str) -> Controller | None:
    """A controller by name; 'fixed' is None (the network's own programs run untouched)."""
    name = name.strip().lower()
    if name == "fixed":
        return None
    if name == "actuated":
        return Actuated()
    if name == "maxpressure":
        return MaxPressure()
    if name == "delaypressure":
        return DelayPressure()
    raise ValueError(f"unknown controller {name!r}; choose from {', '.join(CONTROLLERS)}")
