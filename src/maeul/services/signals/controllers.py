"""Signal controllers with one interface: observe an intersection, choose its next green.

Each ``choose`` returns a position in ``Intersection.greens``; the twin handles yellow,
minimum green and emergency priority, so a controller cannot break those rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from .twin import GREEN, Controller, Intersection, LaneState, Observation

CONTROLLERS = ("fixed", "actuated", "maxpressure", "maxpressure-guard", "delaypressure",
               "tuned")


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


# ------------------------------------------------------------------- guards


def room_for(lanes: dict[str, LaneState], outs: list[str], head_to: str = "") -> float:
    """Vehicles the outgoing lanes of a movement can still take before they are jammed.

    Only halted vehicles count as occupying: on a 10 m outgoing lane a moving car is leaving,
    a standing one blocks the junction. When the incoming lane's head vehicle goes to one of
    `outs`, that lane alone counts: the cars behind it cannot pass it (a lane feeding a free
    right turn and a jammed straight exit is blocked by a straight-ahead head). Unknown
    outgoing lanes do not limit."""
    if not outs:
        return math.inf
    if head_to in outs:
        outs = [head_to]
    total = 0.0
    for o in outs:
        st = lanes.get(o)
        if st is None:
            return math.inf
        total += st.room_halted
    return total


#: the longest a person waits at a pedestrian crossing before its green is forced (s)
WALK_RED = 60.0


def starving(inter: Intersection, obs: Observation, max_red: float) -> int | None:
    """The green to force now so that no approach with a halted vehicle, and no one waiting at
    a pedestrian crossing, waits beyond max_red.

    A link is starving when its incoming lane holds a halted vehicle (whose head takes this
    link, when known), its outgoing lane has room (a movement held by spillback waits for the
    road, not for the signal), and it would pass max_red before the next chance to serve it
    (next decision plus yellow). Among the greens serving starving links, the one serving the
    longest-red link wins."""
    if not obs.red or max_red <= 0:
        return None
    lead = obs.decision + obs.yellow
    lanes = obs.lanes
    worst, pick = -1.0, None
    for g in range(len(inter.greens)):
        if g == obs.current:
            continue
        state = inter.green_state(g)
        for k in range(len(inter.links)):
            if k >= len(state) or k >= len(obs.red) or state[k] not in GREEN:
                continue
            r = obs.red[k]
            if r + lead <= max_red or r <= worst:
                continue
            # people waiting at a crossing: at most WALK_RED, even where max_red is shorter
            # (a crossing that forces its green every 20 s keeps the vehicles switching)
            if obs.walkers.get(k, 0.0) + lead > max(max_red, WALK_RED):
                worst, pick = r, g
                continue
            for a, b in inter.connections(k):
                st, out = lanes.get(a), lanes.get(b)
                if st is None or st.queue < 1 or (st.head_to and st.head_to != b):
                    continue  # no one waiting, or the head of the queue takes another link
                if out is not None and out.room_halted < BLOCKED:
                    continue
                worst, pick = r, g
                break
    return pick


def clear_box(inter: Intersection, obs: Observation, scores: list[float], pick: int) -> int:
    """Do not cut a permissive green while its turners are still inside the junction.

    Turners that entered on a permissive green ('g') wait inside the junction for a gap;
    when a conflicting green starts they are stranded; holding such greens removed every
    lock-up (never resolved: no teleporting) on 60 tuning seeds of cologne3. The best
    green that keeps those links green wins; with none, the current green stays."""
    if pick == obs.current or not obs.inside:
        return pick
    cur = inter.green_state(obs.current)
    trapped = [k for k, n in enumerate(obs.inside) if n and k < len(cur) and cur[k] == "g"]
    if not trapped:
        return pick
    if all(inter.green_state(pick)[k] in GREEN for k in trapped):
        return pick
    ok = [g for g in range(len(inter.greens))
          if g != obs.current and all(inter.green_state(g)[k] in GREEN for k in trapped)]
    if ok:
        best = max(ok, key=lambda g: scores[g])
        if scores[best] > scores[obs.current]:
            return best
    return obs.current


def exit_blocked(inter: Intersection, obs: Observation, g: int) -> frozenset[int]:
    """Links of green g to hold red: their outgoing lane has no room for one more vehicle.

    A vehicle that enters the junction towards a full exit stops inside it, where it blocks
    the links that cross its path; with two lights a few metres apart the queue behind it
    can reach back into the first junction and lock both (traced on ingolstadt21)."""
    state = inter.green_state(g)
    lanes = obs.lanes
    held = []
    for k, (_a, b) in enumerate(inter.links):
        if k >= len(state) or state[k] not in GREEN:
            continue
        for lane in inter.exits[k] if k < len(inter.exits) else [b]:
            st = lanes.get(lane)
            if st is None:
                continue
            # on a short link to the next light a moving vehicle is about to stop there too
            if (st.room if lane in inter.short_out else st.room_halted) < BLOCKED:
                held.append(k)
                break
    return frozenset(held)


# below this many vehicles of room an outgoing lane counts as full
BLOCKED = 1.0


@dataclass
class _Guarded(_Base):
    """Pressure rules with our guards, in order of precedence: no approach waits beyond
    ``max_red`` (``starving``), vehicles inside the junction are not stranded (``clear_box``),
    and a movement into a full outgoing lane gets no credit (``scores``); within the chosen
    green, the twin shows red the links whose exit is full (``hold``, ``exit_blocked``).

    Applying clear_box to starvation's forced greens as well cost 1.6 s of delay on cologne3
    and 2.6 s on cologne1 (tuning seeds), with no lock-up either way."""

    max_red: float = 60.0
    box: bool = True
    # off by default: it ended ingolstadt21's lock-ups (163 -> 70.8 s) but gridlocked
    # Bologna's acosta (349 -> 1186 s); the `tuned` controller switches it on per network
    gate: bool = False

    def scores(self, inter: Intersection, obs: Observation) -> list[float]:
        raise NotImplementedError

    def hold(self, inter: Intersection, obs: Observation, g: int) -> frozenset[int]:
        """Links of green g the twin shows red (after a yellow) while their exit is full."""
        return exit_blocked(inter, obs, g) if self.gate else frozenset()

    def choose(self, inter: Intersection, obs: Observation) -> int:
        sc = self.scores(inter, obs)
        forced = starving(inter, obs, self.max_red)
        if forced is not None:
            return forced
        pick = argmax_keep(sc, obs.current)
        return clear_box(inter, obs, sc, pick) if self.box else pick


@dataclass
class GuardedMaxPressure(_Guarded):
    """Max-pressure (halted vehicles in minus halted out) with our guards: an ablation showing
    how much of delaypressure's gain the guards alone give."""

    name: str = "maxpressure-guard"

    def scores(self, inter: Intersection, obs: Observation) -> list[float]:
        lanes = obs.lanes
        res = []
        for g, (ins, outs) in enumerate(zip(inter.phase_in, inter.phase_out, strict=True)):
            feeds = inter.phase_links[g] if inter.phase_links else {}
            p = 0.0
            for lane in ins:
                st = lanes.get(lane)
                if st is not None and room_for(lanes, feeds.get(lane, []),
                                               st.head_to) >= BLOCKED:
                    p += st.queue
            res.append(p - sum(lanes[lane].queue for lane in outs if lane in lanes))
        return res


@dataclass
class DelayPressure(_Guarded):
    """Our rule: spillback-aware pressure over queued, approaching and long-waiting vehicles.

    Per incoming lane of a green, demand is the halted vehicles, plus `moving` times those
    still moving in the detection zone (they reach the line within the next green), plus
    `wait` times the head vehicle's waiting time in minutes; the lane's credit is capped by
    the room left on the outgoing lanes it feeds in that green (none when they are full).
    Outgoing queues subtract `out` times, as in max-pressure. `switch` > 0 adds to the
    current green the vehicles it would discharge during the yellow a change costs (measured
    worse, off). With the guards of ``_Guarded``."""

    moving: float = 0.5
    wait: float = 0.5
    out: float = 1.0
    switch: float = 0.0
    sat_flow: float = 0.5  # vehicles per second per lane leaving a standing queue
    name: str = "delaypressure"

    def weights(self) -> dict[str, float | bool]:
        """The weights the `tuned` controller chooses per network (``tuning.CANDIDATES``)."""
        return {"out": self.out, "switch": self.switch, "gate": self.gate}

    def scores(self, inter: Intersection, obs: Observation) -> list[float]:
        lanes = obs.lanes
        res = []
        for g, (ins, outs) in enumerate(zip(inter.phase_in, inter.phase_out, strict=True)):
            feeds = inter.phase_links[g] if inter.phase_links else {}
            s = 0.0
            for lane in ins:
                st = lanes.get(lane)
                if st is None:
                    continue
                d = st.queue + self.moving * (st.count - st.queue) + self.wait * st.head_wait / 60
                room = room_for(lanes, feeds.get(lane, []), st.head_to)
                s += 0.0 if room < BLOCKED else min(d, room)
            for lane in outs:
                st = lanes.get(lane)
                if st is not None:
                    s -= self.out * st.queue
            res.append(s)
        if self.switch:
            busy = sum(1 for lane in inter.phase_in[obs.current]
                       if lane in lanes and lanes[lane].queue >= 1)
            res[obs.current] += self.switch * busy * self.sat_flow * obs.yellow
        return res


@dataclass
class GuardedActuated(_Guarded):
    """``actuated``'s queue clearance with the starvation guard: what ``tuned`` runs on a
    network where it beats every set of pressure weights on the tuning seeds. Greens are
    taken in the network's order, so no vehicle queue starves; the guard adds people waiting
    at pedestrian crossings (a phase no vehicle queue asks for). The clearance guard is off:
    on a netgenerate 3x3 grid with protected left-turn phases (tuning seeds 100-101, cars
    only) it held the greens of left turners waiting inside the junction, 39.3 s against
    27.2 without it (delaypressure's defaults: 38.7)."""

    max_green: float = 30.0
    box: bool = False
    name: str = "tuned"

    def weights(self) -> dict[str, float | bool]:
        return {"actuated": True}

    def scores(self, inter: Intersection, obs: Observation) -> list[float]:
        return [sum(obs.lanes[lane].queue for lane in ins if lane in obs.lanes)
                for ins in inter.phase_in]

    def choose(self, inter: Intersection, obs: Observation) -> int:
        sc = self.scores(inter, obs)
        forced = starving(inter, obs, self.max_red)
        if forced is not None:
            return forced
        pick = obs.current
        if not (sc[obs.current] > 0 and obs.green_time < self.max_green):
            n = len(inter.greens)
            pick = next((g for g in ((obs.current + k) % n for k in range(1, n)) if sc[g] > 0),
                        obs.current)
        return clear_box(inter, obs, sc, pick) if self.box else pick


@dataclass
class PlainPressure(MaxPressure):
    """Varaiya's max-pressure without our guards: what ``tuned`` runs on a network where it
    beats every guarded candidate on the tuning seeds. On TAVF-Hamburg the guards cost more
    than they save (tuning seeds 100-102: plain max-pressure 47.4 s, the best guarded weights
    63.0). Without the guards a network can lock up where the tuning seeds did not show it
    (cologne3), so it must win by a margin (``tuning.UNGUARDED``)."""

    name: str = "tuned"

    def weights(self) -> dict[str, float | bool]:
        return {"pressure": True}


@dataclass
class Plan(_Base):
    """The network's own programs, as SUMO runs them (what ``fixed`` measures), with the
    twin's emergency priority on top: what ``tuned`` runs on a network where none of its
    weights beat the city's plans on the tuning seeds (do no harm). ``follows_plan`` tells the
    twin to leave the programs running (``runner._plan_loop``); ``choose`` is never asked."""

    name: str = "tuned"
    follows_plan: ClassVar[bool] = True

    def choose(self, inter: Intersection, obs: Observation) -> int:
        return obs.current

    def weights(self) -> dict[str, float | bool]:
        return {"plan": True}


def make(name: str, params: dict[str, float] | None = None) -> Controller | None:
    """A controller by name; 'fixed' is None (the network's own programs run untouched).

    'tuned' is delaypressure with the weights ``params`` chosen for the network by
    ``tuning.tune_many`` (without them, delaypressure's defaults)."""
    name = name.strip().lower()
    if params is not None and name != "tuned":
        raise ValueError(f"controller {name!r} takes no parameters")
    if name == "tuned":
        from .tuning import check_params

        checked = check_params(params or {})
        if checked.get("plan"):
            return Plan()
        if checked.pop("actuated", False):
            return GuardedActuated(**checked)  # type: ignore[arg-type]
        if checked.pop("pressure", False):
            return PlainPressure()
        checked.pop("plan", None)
        return DelayPressure(**checked, name="tuned")  # type: ignore[arg-type]
    if name == "fixed":
        return None
    if name == "actuated":
        return Actuated()
    if name == "maxpressure":
        return MaxPressure()
    if name == "maxpressure-guard":
        return GuardedMaxPressure()
    if name == "delaypressure":
        return DelayPressure()
    raise ValueError(f"unknown controller {name!r}; choose from {', '.join(CONTROLLERS)}")
