"""One closed-loop simulation: a controller drives every traffic light of a scenario."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .lights import box_clear, newly_green
from .twin import (
    GREEN,
    ApprovalPolicy,
    Controller,
    Intersection,
    Observation,
    PlanHook,
    Proposal,
    RunResult,
    ScenarioConfig,
    Timing,
    TwinError,
    _Signal,
    automatic,
    discover,
    inside_junction,
    observe_exits,
    observe_lanes,
    open_sumo,
    read_config,
    sandbox,
    waiting_walkers,
)

EMERGENCY = "emergency"


def sumo_args(cfg_copy: Path, cfg: ScenarioConfig, out: Path, seed: int,
              end: float | None) -> list[str]:
    """RESCO's options: no teleports, trip info (unfinished trips too) with emissions."""
    args = ["-c", str(cfg_copy), "--seed", str(seed), "--time-to-teleport", "-1",
            "--tripinfo-output", str(out), "--tripinfo-output.write-unfinished",
            "--device.emissions.probability", "1", "--no-step-log", "true",
            "--no-warnings", "true", "--log", str(out.with_suffix(".log")),
            "--duration-log.disable", "true", "--verbose", "false",
            "--duration-log.statistics", "false"]
    stop = end if end is not None else cfg.end
    if stop is not None:
        args += ["--end", str(stop)]
    return args


def _load_net(cfg: ScenarioConfig) -> Any:
    import sumolib

    return sumolib.net.readNet(str(cfg.path.parent / cfg.net_files[0]), withInternal=False)


def simulate(
    config: str | Path,
    controller: Controller | None,
    out: Path,
    seed: int = 0,
    timing: Timing | None = None,
    end: float | None = None,
    emergency: bool = True,
    approval: ApprovalPolicy = automatic,
    on_plan_change: PlanHook | None = None,
    record: bool = False,
    backend: str = "auto",
    on_step: Callable[[Any, float], None] | None = None,
) -> RunResult:
    """Run the scenario; controller None keeps the network's own programs (fixed time).

    Writes trip info to `out` and `out`.pending.csv (vehicles never inserted, with their
    scheduled departure) for the delay metric. `end` overrides the config's end (tests)."""
    cfg = read_config(config)
    timing = timing or Timing.for_network(cfg.name)
    stop = end if end is not None else cfg.end
    if stop is None:
        raise TwinError(f"{cfg.path}: the configuration has no end time; pass one")
    out.parent.mkdir(parents=True, exist_ok=True)
    result = RunResult(out, stop)
    with sandbox(cfg) as copy:
        conn = open_sumo(sumo_args(copy, cfg, out.resolve(), seed, stop), backend)
        try:
            inters = discover(conn, _load_net(cfg), timing.detect_length)
            if not inters and not conn.trafficlight.getIDList():
                raise TwinError(f"{cfg.path}: the network has no traffic lights")
            if controller is not None and getattr(controller, "follows_plan", False):
                controller.reset(inters)
                _plan_loop(conn, inters, timing, stop, emergency, approval, on_plan_change,
                           record, result, on_step)
            elif controller is not None:
                controller.reset(inters)
                _loop(conn, inters, controller, timing, stop, emergency, approval,
                      on_plan_change, record, result, on_step)
            else:
                while conn.simulation.getTime() < stop:
                    conn.simulationStep()
                    if on_step is not None:
                        on_step(conn, conn.simulation.getTime())
            pending = [(v, stop - conn.vehicle.getDepartDelay(v))
                       for v in conn.simulation.getPendingVehicles()]
        finally:
            conn.close()
    with open(out.with_suffix(".pending.csv"), "w", encoding="utf-8") as fh:
        fh.write("id,depart\n")
        fh.writelines(f"{v},{d:.2f}\n" for v, d in pending)
    return result


def _track_emergency(conn: Any, active: set[str]) -> None:
    """Keep `active` to the emergency vehicles now in the network (departed, not arrived)."""
    for v in conn.simulation.getDepartedIDList():
        if conn.vehicle.getVehicleClass(v) == EMERGENCY:
            active.add(v)
    active.difference_update(conn.simulation.getArrivedIDList())


def _emergency_demand(conn: Any, active: set[str], by_id: dict[str, Intersection],
                      rng: float) -> dict[str, int]:
    """Signal index each controlled light should serve for the nearest emergency vehicle."""
    want: dict[str, tuple[float, int]] = {}
    for v in list(active):
        for tls, idx, dist, _state in conn.vehicle.getNextTLS(v)[:1]:
            if tls in by_id and dist <= rng and (tls not in want or dist < want[tls][0]):
                want[tls] = (dist, idx)
    return {t: idx for t, (_, idx) in want.items()}


def _plan_loop(conn: Any, inters: list[Intersection], timing: Timing, stop: float,
               emergency: bool, approval: ApprovalPolicy, hook: PlanHook | None, record: bool,
               result: RunResult, on_step: Callable[[Any, float], None] | None) -> None:
    """The network's own programs as SUMO runs them; the twin steps in only for an emergency
    vehicle, with the same rules as ``_loop``: the program's green must have run the minimum
    green, a yellow comes before the serving green, and the green is held while the vehicle
    is in range. Then the program takes over again at the phase that shows that green, so no
    link goes from green to red without the program's own yellow."""
    TL = conn.trafficlight
    by_id = {i.id: i for i in inters}
    # light -> [serving green, end of the yellow before it (None once it shows)]
    taken: dict[str, list[Any]] = {}
    active: set[str] = set()
    now = conn.simulation.getTime()
    while now < stop:
        conn.simulationStep()
        now = conn.simulation.getTime()
        if on_step is not None:
            on_step(conn, now)
        for tls, entry in taken.items():
            if entry[1] is not None and now >= entry[1]:
                entry[1] = None
                TL.setRedYellowGreenState(tls, by_id[tls].green_state(entry[0]))
                if record:
                    result.log.append((now, tls, by_id[tls].green_state(entry[0]), "green"))
        if not emergency:
            continue
        _track_emergency(conn, active)
        want = _emergency_demand(conn, active, by_id, timing.emergency_range) if active else {}
        for tls, idx in want.items():
            inter = by_id[tls]
            serving = inter.serving(idx)
            if not serving or tls in taken:
                continue
            g = inter.phase_of(TL.getRedYellowGreenState(tls))
            if g is None:  # the program is in a yellow or all-red: let it finish
                continue
            if g in serving:  # already green for it: hold that green
                TL.setRedYellowGreenState(tls, inter.green_state(g))
                taken[tls] = [g, None]
                continue
            if TL.getSpentDuration(tls) < timing.min_green_s or not approval(
                    Proposal(tls, now, g, serving[0], "emergency")):
                continue
            shown = inter.yellow_between(g, serving[0])
            TL.setRedYellowGreenState(tls, shown)
            taken[tls] = [serving[0], now + timing.yellow]
            result.changes += 1
            if record:
                result.log.append((now, tls, shown, "yellow"))
            if hook is not None:
                hook(tls, serving[0], "emergency")
        for tls in [t for t, e in taken.items() if t not in want and e[1] is None]:
            inter = by_id[tls]
            TL.setProgram(tls, inter.program)
            TL.setPhase(tls, inter.greens[taken.pop(tls)[0]])
            if record:
                result.log.append((now, tls, TL.getRedYellowGreenState(tls), "program"))


def _loop(conn: Any, inters: list[Intersection], ctl: Controller, timing: Timing, stop: float,
          emergency: bool, approval: ApprovalPolicy, hook: PlanHook | None, record: bool,
          result: RunResult, on_step: Callable[[Any, float], None] | None) -> None:
    TL = conn.trafficlight
    by_id = {i.id: i for i in inters}
    sig: dict[str, _Signal] = {}
    now = conn.simulation.getTime()
    for inter in inters:
        # start on the green the network shows now, or its first green
        cur = TL.getRedYellowGreenState(inter.id)
        g = next((k for k in range(len(inter.greens)) if inter.green_state(k) == cur), 0)
        sig[inter.id] = _Signal(g, now, last_green=[now] * len(inter.links))
        TL.setRedYellowGreenState(inter.id, inter.green_state(g))
        if record:
            result.log.append((now, inter.id, inter.green_state(g), "green"))
    active: set[str] = set()
    next_decision = now + timing.decision

    def change(inter: Intersection, s: _Signal, to: int, t: float, reason: str,
               held_next: frozenset[int] = frozenset()) -> None:
        if not approval(Proposal(inter.id, t, s.green, to, reason)):
            return
        for k, c in enumerate(s.shown(inter)[:len(s.last_green)]):
            if c in GREEN:  # these links were green until now
                s.last_green[k] = t
        state = list(inter.yellow_between(s.green, to))
        for k in s.held | s.box_held:  # held red: stays red through the yellow
            state[k] = "r"
        for k in s.clearing | held_next:  # green now, held in the next green: clears
            if state[k] in GREEN:
                state[k] = "y"
        shown = "".join(state)
        TL.setRedYellowGreenState(inter.id, shown)
        s.held, s.clearing, s.clear_until, s.held_next = (frozenset(), frozenset(), None,
                                                          held_next)
        s.box_held, s.box_until = frozenset(), None
        s.decided = held_next
        s.yellow_until, s.target = t + timing.yellow, to
        result.changes += 1
        if record:
            result.log.append((t, inter.id, shown, "yellow"))
        if hook is not None:
            hook(inter.id, to, reason)

    def hold(inter: Intersection, s: _Signal, new: frozenset[int], t: float) -> None:
        """Hold red the links of the current green whose exit is full (after a yellow);
        release at once those whose exit has room again."""
        added = new - s.held - s.clearing
        if new == s.held or (not added and s.held <= new):
            return
        s.held = s.held & new
        if added:
            for k in added:
                s.last_green[k] = t
            s.clearing, s.clear_until = added, t + timing.yellow
        state = s.shown(inter)
        TL.setRedYellowGreenState(inter.id, state)
        if record:
            result.log.append((t, inter.id, state, "hold"))

    # the exit hold (``_Guarded.gate``): only a controller that has it switched on pays for
    # reading short links every step
    holds = getattr(ctl, "hold", None) if getattr(ctl, "gate", False) else None

    while now < stop:
        conn.simulationStep()
        now = conn.simulation.getTime()
        if on_step is not None:
            on_step(conn, now)
        for inter in inters:
            s = sig[inter.id]
            if s.yellow_until is not None and now >= s.yellow_until:
                if timing.box_wait > 0 and inter.box_foes:
                    turned = newly_green(inter.green_state(s.green),
                                         inter.green_state(s.target))
                    s.box_held = box_clear(conn, inter, turned)
                    s.box_until = now + timing.box_wait if s.box_held else None
                s.green, s.since, s.yellow_until = s.target, now, None
                s.held, s.held_next = s.held_next, frozenset()
                TL.setRedYellowGreenState(inter.id, s.shown(inter))
                if record:
                    result.log.append((now, inter.id, s.shown(inter), "green"))
            elif s.box_held and s.box_until is not None:
                left = box_clear(conn, inter, s.box_held) if now < s.box_until else frozenset()
                if left != s.box_held:
                    s.box_held = left
                    s.box_until = s.box_until if left else None
                    TL.setRedYellowGreenState(inter.id, s.shown(inter))
                    if record:
                        result.log.append((now, inter.id, s.shown(inter), "box"))
            if s.clear_until is not None and now >= s.clear_until:
                s.held, s.clearing, s.clear_until = s.held | s.clearing, frozenset(), None
                TL.setRedYellowGreenState(inter.id, s.shown(inter))
                if record:
                    result.log.append((now, inter.id, s.shown(inter), "hold"))
        preempted: set[str] = set()
        if emergency:
            _track_emergency(conn, active)
            if active:
                for tls, idx in _emergency_demand(conn, active, by_id,
                                                  timing.emergency_range).items():
                    inter, s = by_id[tls], sig[tls]
                    preempted.add(tls)
                    serving = inter.serving(idx)
                    if not serving or s.yellow_until is not None or s.green in serving:
                        continue
                    if now - s.since >= timing.min_green_s:
                        change(inter, s, serving[0], now, "emergency")
        if holds is not None:
            # short links between two lights fill in seconds: their exits are read every step
            t0 = time.perf_counter()
            for inter in inters:
                s = sig[inter.id]
                if (not inter.short_out or inter.id in preempted or s.yellow_until is not None
                        or s.clear_until is not None):
                    continue
                obs = Observation(now, s.green, now - s.since,
                                  observe_exits(conn, inter, inter.short_out))
                hold(inter, s, (s.decided - inter.short_links) | holds(inter, obs, s.green), now)
            result.observe_seconds += time.perf_counter() - t0
        if now + 1e-6 < next_decision:
            continue
        next_decision += timing.decision
        for inter in inters:
            s = sig[inter.id]
            if inter.id in preempted or s.yellow_until is not None:
                continue
            t0 = time.perf_counter()
            obs = Observation(now, s.green, now - s.since, observe_lanes(conn, inter),
                              s.red_times(inter, now), timing.decision, timing.yellow,
                              inside_junction(conn, inter), waiting_walkers(conn, inter))
            t1 = time.perf_counter()
            to = ctl.choose(inter, obs)
            if not 0 <= to < len(inter.greens):
                raise TwinError(f"controller {ctl.name} chose phase {to} at {inter.id}, "
                                f"which has {len(inter.greens)} greens")
            switch = to != s.green and now - s.since >= timing.min_green_s
            held = (holds(inter, obs, to if switch else s.green) if holds is not None
                    else frozenset())
            result.decide_seconds += time.perf_counter() - t1
            result.observe_seconds += t1 - t0
            result.decisions += 1
            if switch:
                change(inter, s, to, now, "controller", held)
            elif holds is not None and s.clear_until is None:
                s.decided = held
                hold(inter, s, held, now)
