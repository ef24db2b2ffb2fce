"""The signal controller as an AI service: the twin in the city's hub and trust layer.

``SignalService`` runs ``simulate`` in a background thread. Detectors publish through device
ingest (``publish.py``); every plan change the controller wants is a proposal to the trust
layer's decision engine (system ``traffic-signal-control``, action ``signals.phase``):

- the engine decides in-process, inside the simulation step: at level II a proposal applies
  at once (the approval callable returns True and the twin shows the yellow and the new
  green); under the ``operator`` policy, or when the assessed level needs a human, it waits in
  the queue and the twin keeps the current green;
- approving it (HTTP or Python, any thread) calls the ``signals.phase`` applier, which hands
  the change to the twin and waits until the next decision step applies it, with the yellow
  and minimum green the twin enforces. A change whose starting green is no longer shown
  fails instead of applying late.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ... import __version__
from ...trust.decisions import Decisions, RetryLater
from .controllers import make
from .publish import DetectorPublisher, approaches_of, georeferenced, signal_entity_id
from .registry import ACTION_KIND, SYSTEM_ID, ensure_registered
from .runner import simulate
from .tuning import DEFAULT_DIR, describe
from .twin import (
    Controller,
    Intersection,
    Observation,
    Proposal,
    Timing,
    TwinError,
    discover,
    observe_lanes,
    read_config,
)

log = logging.getLogger(__name__)
POLICIES = ("automatic", "operator")
MAX_KEPT = 2000  # plan changes and applier results kept in memory
ACTOR = "service:traffic-signal-control"
_RUNNING: dict[str, SignalService] = {}  # run id -> service, for the process-wide applier
_RUNNING_LOCK = threading.Lock()


class TwinStopped(RuntimeError):
    """The simulation that made the proposal is no longer running; it cannot apply."""


class PhaseNotApplicable(RuntimeError):
    """The intersection no longer shows the green the proposal started from."""


class _Stopped(Exception):
    """Raised inside the simulation step to end the run early."""


@dataclass
class _Ticket:
    """An approved change (or a rollback) waiting for the twin's next decision step."""

    key: str
    tls: str
    from_phase: int
    to_phase: int
    reason: str = "controller"
    rollback: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    outcome: str | None = None  # applied | stale | stopped
    detail: str = ""
    sim_time: float | None = None


@dataclass
class _Open:
    pid: str
    wall_expiry: float  # time.monotonic()


def _apply(tenant: str, proposal: dict[str, Any], key: str) -> dict[str, Any] | None:
    return _service_of(proposal).apply_change(proposal, key)


def _rollback(tenant: str, proposal: dict[str, Any], key: str) -> dict[str, Any] | None:
    try:
        svc = _service_of(proposal)
    except TwinStopped:
        return {"switchedBack": False, "note": "the simulation has ended"}
    return svc.rollback_change(proposal, key)


def _validate(params: dict[str, Any], targets: list[str]) -> None:
    for name in ("twin", "run", "tls"):
        if not isinstance(params.get(name), str) or not params[name]:
            raise ValueError(f"{name}: a non-empty string is required")
    for name in ("from", "to"):
        v = params.get(name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"{name}: a green phase position (integer >= 0) is required")
    if len(targets) != 1:
        raise ValueError("a phase change targets exactly one TrafficSignal entity")


def _service_of(proposal: dict[str, Any]) -> SignalService:
    run = proposal["action"]["params"]["run"]
    with _RUNNING_LOCK:
        svc = _RUNNING.get(run)
    if svc is None:
        raise TwinStopped(f"simulation run {run} is not running in this process")
    return svc


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Gate:
    """Wraps the controller: an approved change waiting for the twin is chosen first."""

    def __init__(self, service: SignalService, inner: Controller) -> None:
        self.s, self.inner, self.name = service, inner, inner.name
        # the inner rule's hold of links into full exits (a guard, not a plan change)
        self.hold = getattr(inner, "hold", None)
        # the twin reads the hold only where the rule switches it on (``_Guarded.gate``)
        self.gate = getattr(inner, "gate", False)
        # the network's own programs (``Plan``): the twin leaves them running
        self.follows_plan = getattr(inner, "follows_plan", False)

    def reset(self, intersections: list[Intersection]) -> None:
        self.s.intersections = {i.id: i for i in intersections}
        self.inner.reset(intersections)

    def choose(self, inter: Intersection, obs: Observation) -> int:
        ticket = self.s.ticket_for(inter.id)
        if ticket is not None:
            if obs.current == ticket.to_phase:
                self.s.settle(ticket, "applied", obs.time, "the green was already shown")
            elif obs.current != ticket.from_phase:
                self.s.settle(ticket, "stale", obs.time,
                              f"the intersection shows green {obs.current} now, not "
                              f"{ticket.from_phase}")
            else:
                return ticket.to_phase  # the twin applies it (approval sees the ticket)
        return self.inner.choose(inter, obs)


class SignalService:
    """One twin run by one controller, publishing into ``tenant`` and acting via proposals.

    ``controller``: a Controller, a name (``delaypressure``, ``maxpressure`` ...) or
    ``fixed``/None (the network's programs: publishing only, no proposals).
    ``speed``: simulated seconds per wall second (None: as fast as it runs).
    ``expiry_s``: simulated seconds a queued proposal stays valid. ``loop``: start the
    scenario again (next seed) when it ends, so a demo city stays alive.
    """

    def __init__(self, services: Any, config: str | Path, controller: Controller | str | None,
                 tenant: str = "default", approval_policy: str = "automatic", *,
                 speed: float | None = None, period_s: float = 60.0, expiry_s: float = 30.0,
                 seed: int = 0, end: float | None = None, timing: Timing | None = None,
                 loop: bool = False, twin: str | None = None,
                 apply_timeout_s: float = 15.0, tuning_dir: Path = DEFAULT_DIR) -> None:
        if approval_policy not in POLICIES:
            raise ValueError(f"approval_policy: one of {', '.join(POLICIES)}")
        if speed is not None and speed <= 0:
            raise ValueError("speed: simulated seconds per wall second, above 0")
        if expiry_s <= 0 or period_s <= 0:
            raise ValueError("expiry_s and period_s must be positive")
        self.cfg = read_config(config)  # a bad scenario fails here, not in the thread
        self.services, self.tenant, self.policy = services, tenant, approval_policy
        if isinstance(controller, str) and controller.strip().lower() == "tuned":
            from .tuning import tuned_controller

            self.controller = tuned_controller(self.cfg.path, tuning_dir)
        else:
            self.controller = make(controller) if isinstance(controller, str) else controller
        self.speed, self.period_s, self.expiry_s = speed, period_s, expiry_s
        self.seed, self.end, self.loop = seed, end, loop
        self.timing = timing or Timing.for_network(self.cfg.name)
        self.twin = twin or self.cfg.name
        self.run_id = uuid.uuid4().hex[:12]
        self.apply_timeout_s = apply_timeout_s
        name = self.controller.name if self.controller is not None else "fixed"
        if name == "tuned" and hasattr(self.controller, "weights"):
            # the weights are part of the model: decisions record which ones acted
            name += f"({describe(self.controller.weights())})"
        self.model_version = f"{name}@maeul-{__version__}"
        self.intersections: dict[str, Intersection] = {}
        self.level: int | None = None
        self.sim_time: float | None = None
        self.runs = 0
        self.error: BaseException | None = None
        self.applied: list[dict[str, Any]] = []  # every change the twin showed
        self.counts = {"submitted": 0, "auto": 0, "queued": 0, "refused": 0}
        self.publisher: DetectorPublisher | None = None
        self._engine: Decisions | None = None
        self._info: dict[str, dict[str, Any]] = {}
        self._tickets: dict[str, _Ticket] = {}
        self._done: dict[str, dict[str, Any]] = {}
        self._open: dict[tuple[str, bool], _Open] = {}  # (tls, emergency) -> open proposal
        self._applying: dict[str, tuple[str | None, str]] = {}  # tls -> (proposal, reason)
        self._consumed: dict[str, _Ticket] = {}  # tls -> the ticket the twin is applying
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sim_ident: int | None = None
        self._inline: str | None = None
        self._conn: Any = None
        self._pace: tuple[float, float] | None = None  # (sim t, monotonic) anchor
        self._net: Any = None
        self._workdir = Path()

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> SignalService:
        """Register and assess the system, wire the applier, start the simulation thread."""
        if self._thread is not None:
            raise RuntimeError("the service is already started")
        s = self.services
        self.level = ensure_registered(s, self.tenant)
        if s.ingest is None:
            from ...ingest.devices import DeviceIngest
            from ...ingest.http import DeviceIngestHolder

            s.ingest = DeviceIngestHolder(DeviceIngest(s.hub))
        main: Decisions = s.trust.decisions
        if ACTION_KIND not in main.appliers:
            main.register_applier(ACTION_KIND, _apply, _rollback, validate=_validate)
        self._engine = main
        geo = georeferenced(self.cfg.path.parent / self.cfg.net_files[0])
        self.publisher = DetectorPublisher(s, self.tenant, self.twin, self.period_s, geo=geo)
        self._workdir = Path(tempfile.mkdtemp(prefix="maeul-signals-"))
        with _RUNNING_LOCK:
            _RUNNING[self.run_id] = self
        self._thread = threading.Thread(target=self._run, name=f"signals-{self.twin}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """End the simulation (at its next step) and wait for the thread."""
        self._stop.set()
        self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the simulation to end; True when it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        self._sim_ident = threading.get_ident()
        try:
            while not self._stop.is_set():
                self.runs += 1
                out = self._workdir / f"run{self.runs}" / "tripinfo.xml"
                ctl = _Gate(self, self.controller) if self.controller is not None else None
                self.intersections, self._pace, self._conn = {}, None, None
                simulate(self.cfg.path, ctl, out, seed=self.seed + self.runs - 1,
                         timing=self.timing, end=self.end, approval=self._approve,
                         on_plan_change=self._on_plan_change, on_step=self._on_step)
                shutil.rmtree(out.parent, ignore_errors=True)
                if not self.loop:
                    break
        except _Stopped:
            pass
        except Exception as exc:  # noqa: BLE001 - reported through .error and the log
            self.error = exc
            log.exception("signals twin %s stopped with an error", self.twin)
        finally:
            with _RUNNING_LOCK:
                _RUNNING.pop(self.run_id, None)
            with self._lock:
                tickets = list(self._tickets.values())
                self._tickets.clear()
            for t in tickets:
                self.settle(t, "stopped", self.sim_time, "the simulation ended")
            shutil.rmtree(self._workdir, ignore_errors=True)

    # -- simulation hooks (simulation thread) ---------------------------------------------------
    def _on_step(self, conn: Any, t: float) -> None:
        assert self.publisher is not None
        if self._stop.is_set():
            if self._pace is not None and self.publisher.pending:
                self.publisher.publish(conn, t, self._info)  # the readings of the part period
            raise _Stopped()
        self._conn, self.sim_time = conn, t
        if self._pace is None:
            self._setup(conn, t)
            return
        self.publisher.step(conn, t, self._info)
        stop = self.end if self.end is not None else self.cfg.end
        if stop is not None and t >= stop and self.publisher.pending:
            self.publisher.publish(conn, t, self._info)  # the run's last, shorter period
        self._sleep(t)

    def _setup(self, conn: Any, t: float) -> None:
        if not self.intersections:  # fixed time: no controller reset named them
            if self._net is None:
                import sumolib

                self._net = sumolib.net.readNet(str(self.cfg.path.parent / self.cfg.net_files[0]),
                                                withInternal=False)
            self.intersections = {i.id: i for i in discover(conn, self._net,
                                                            self.timing.detect_length)}
        for tls, inter in self.intersections.items():
            state = conn.trafficlight.getRedYellowGreenState(tls)
            phase = inter.phase_of(state)
            self._info[tls] = {"controller": self.model_version.split("@")[0],
                               "modelVersion": self.model_version,
                               "approvalPolicy": self.policy, "phase": phase}
        assert self.publisher is not None
        self.publisher.setup(conn, list(self.intersections.values()), self._info)
        self._pace = (t, time.monotonic())

    def _sleep(self, t: float) -> None:
        if self.speed is None or self._pace is None:
            return
        t0, w0 = self._pace
        delay = w0 + (t - t0) / self.speed - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)
        elif delay < -2.0:  # fell behind (a slow step): do not race to catch up
            self._pace = (t, time.monotonic())

    def _on_plan_change(self, tls: str, phase: int, reason: str) -> None:
        pid, why = self._applying.pop(tls, (None, reason))
        change = {"simTime": self.sim_time, "phase": phase, "reason": why, "proposal": pid,
                  "at": _iso(datetime.now(UTC))}
        self.applied.append({"tls": tls, **change})
        if len(self.applied) > MAX_KEPT:  # a looping demo runs for days
            del self.applied[: MAX_KEPT // 2]
        info = self._info.setdefault(tls, {})
        info["phase"], info["lastPlanChange"] = phase, change
        if self.publisher is not None:
            self.publisher.plan_changed(tls)
        ticket = self._consumed.pop(tls, None)
        if ticket is not None:
            self.settle(ticket, "applied", self.sim_time, "")

    def _approve(self, p: Proposal) -> bool:
        """The runner's approval callable: True applies the change now."""
        if self._stop.is_set():
            return False
        with self._lock:
            ticket = self._tickets.get(p.tls_id)
            if ticket is not None and (ticket.from_phase, ticket.to_phase) == (
                    p.from_phase, p.to_phase):
                del self._tickets[p.tls_id]
                self._consumed[p.tls_id] = ticket
                self._applying[p.tls_id] = (ticket.key, "rollback" if ticket.rollback
                                            else f"{ticket.reason}, approved")
                return True
        if self._still_open((p.tls_id, p.reason == "emergency")):
            return False
        return self._submit(p)

    def _still_open(self, slot: tuple[str, bool]) -> bool:
        """One open proposal per intersection (and one for emergencies): later wishes wait
        until it is decided or expires."""
        o = self._open.get(slot)
        if o is None:
            return False
        if time.monotonic() < o.wall_expiry:
            try:
                status = self.services.trust.decisions.get(self.tenant, o.pid)["status"]
                if status in ("pending", "approved"):
                    return True
            except Exception:  # noqa: BLE001 - an unreadable proposal no longer blocks
                log.warning("signals: proposal %s could not be read", o.pid)
        del self._open[slot]
        return False

    def _submit(self, p: Proposal) -> bool:
        assert self._engine is not None
        inter = self.intersections.get(p.tls_id)
        if inter is None:
            return False
        pid = f"sig-{uuid.uuid4().hex[:24]}"
        wall_ttl = self.expiry_s / (self.speed or 1.0)
        doc = self._proposal(pid, p, inter, datetime.now(UTC) + timedelta(seconds=wall_ttl))
        self.counts["submitted"] += 1
        # emergency priority is a standing rule: it takes the oversight of the assessed level,
        # never waits behind the operator policy meant for the controller's own choices
        if self.policy == "operator" and p.reason != "emergency":
            doc["review"] = "required"
        engine = self._engine
        self._inline = pid
        try:
            res = engine.submit(self.tenant, doc, ACTOR)
        except Exception as exc:  # noqa: BLE001 - the trust layer refused: nothing applies
            self.counts["refused"] += 1
            if self.counts["refused"] in (1, 10, 100, 1000):
                log.warning("signals: the decision engine refused a proposal (%s: %s)",
                            type(exc).__name__, getattr(exc, "detail", exc))
            return False
        finally:
            self._inline = None
        if res["status"] == "applied":
            self.counts["auto"] += 1
            self._applying[p.tls_id] = (pid, p.reason)
            return True
        if res["status"] in ("pending", "approved"):
            self.counts["queued"] += 1
            self._open[(p.tls_id, p.reason == "emergency")] = _Open(
                pid, time.monotonic() + wall_ttl)
        return False

    def _proposal(self, pid: str, p: Proposal, inter: Intersection,
                  expires: datetime) -> dict[str, Any]:
        """The proposal: the change, the queues behind it and the entities it rests on."""
        lanes = observe_lanes(self._conn, inter) if self._conn is not None else {}

        def queued(g: int) -> float:
            return sum(lanes[ln].queue for ln in inter.phase_in[g] if ln in lanes)

        def pressure(g: int) -> float:
            return queued(g) - sum(lanes[ln].queue for ln in inter.phase_out[g] if ln in lanes)

        qf, qt = queued(p.from_phase), queued(p.to_phase)
        pf, pt = pressure(p.from_phase), pressure(p.to_phase)
        if p.reason == "emergency":
            why = (f"An emergency vehicle approaches {p.tls_id}: give it green {p.to_phase} "
                   f"(now green {p.from_phase}).")
        else:
            why = (f"Switch {p.tls_id} from green {p.from_phase} to green {p.to_phase}: "
                   f"{qt:.0f} vehicles queue for it against {qf:.0f} for the current green "
                   f"(pressure {pt:+.0f} against {pf:+.0f}); rule {self.model_version}.")
        signal = signal_entity_id(self.twin, p.tls_id)
        served = set(inter.phase_in[p.from_phase]) | set(inter.phase_in[p.to_phase])
        links: list[dict[str, Any]] = [{"entity": signal}]
        for a in approaches_of(self.twin, inter):
            if served & set(a.lanes):
                links.append({"entity": a.entity,
                              "attrs": ["intensity", "occupancy", "averageDelay", "congested"]})
        return {
            "id": pid, "system": SYSTEM_ID,
            "action": {"kind": ACTION_KIND, "params": {
                "twin": self.twin, "run": self.run_id, "tls": p.tls_id, "from": p.from_phase,
                "to": p.to_phase, "simTime": p.time, "reason": p.reason,
                "state": inter.green_state(p.to_phase)}},
            "target": signal, "why": why,
            "evidence": {"links": links[:100], "modelVersion": self.model_version},
            "expectedEffect": {"queued": {"current": qf, "proposed": qt},
                               "pressure": {"current": pf, "proposed": pt},
                               "simTime": p.time, "reason": p.reason},
            "expiresAt": _iso(expires),
        }

    # -- appliers (any thread) ------------------------------------------------------------------
    def ticket_for(self, tls: str) -> _Ticket | None:
        with self._lock:
            return self._tickets.get(tls)

    def settle(self, ticket: _Ticket, outcome: str, sim_time: float | None, detail: str) -> None:
        with self._lock:
            if self._tickets.get(ticket.tls) is ticket:
                del self._tickets[ticket.tls]
        ticket.outcome, ticket.detail, ticket.sim_time = outcome, detail, sim_time
        ticket.done.set()

    def apply_change(self, proposal: dict[str, Any], key: str) -> dict[str, Any]:
        """The ``signals.phase`` applier: at most one change per proposal id."""
        with self._lock:
            if key in self._done:
                return self._done[key]
        params = proposal["action"]["params"]
        base = {"twin": self.twin, "tls": params["tls"], "phase": params["to"]}
        if threading.get_ident() == self._sim_ident and self._inline == key:
            # applied in this very step, and marked applied by the engine before any retry
            return {**base, "simTime": self.sim_time, "applied": "at once"}
        ticket = self._wait(_Ticket(key, params["tls"], params["from"], params["to"],
                                    str(params.get("reason", "controller"))))
        if ticket.outcome != "applied":
            raise PhaseNotApplicable(ticket.detail)
        result = {**base, "simTime": ticket.sim_time, "applied": "at the next decision"}
        if ticket.detail:
            result["note"] = ticket.detail
        with self._lock:
            if len(self._done) > MAX_KEPT:
                self._done.clear()  # retries come within minutes; old keys are settled
            self._done[key] = result
        return result

    def rollback_change(self, proposal: dict[str, Any], key: str) -> dict[str, Any]:
        """Undo an applied change: switch back if the light still shows its green."""
        params = proposal["action"]["params"]
        try:
            ticket = self._wait(_Ticket(key, params["tls"], params["to"], params["from"],
                                        rollback=True))
        except (RetryLater, TwinStopped):
            return {"switchedBack": False, "note": "the twin did not reach a decision step"}
        out = {"switchedBack": ticket.outcome == "applied", "simTime": ticket.sim_time}
        return {**out, "note": ticket.detail} if ticket.detail else out

    def _wait(self, ticket: _Ticket) -> _Ticket:
        """Hand a change to the twin and wait for its next decision step to settle it."""
        if threading.get_ident() == self._sim_ident:
            raise RetryLater()  # the simulation thread cannot wait for itself
        with self._lock:
            if not self.running:
                raise TwinStopped("the simulation has ended")
            old = self._tickets.get(ticket.tls)
            self._tickets[ticket.tls] = ticket
        if old is not None:
            self.settle(old, "stale", self.sim_time, "a later approval replaced it")
        if not ticket.done.wait(self.apply_timeout_s):
            with self._lock:
                withdrawn = self._tickets.get(ticket.tls) is ticket
                if withdrawn:
                    del self._tickets[ticket.tls]
            if withdrawn:
                raise RetryLater()  # it never reached the twin: the engine tries again
            ticket.done.wait(self.apply_timeout_s)  # being applied in this very step
        if ticket.outcome == "stopped":
            raise TwinStopped(ticket.detail)
        return ticket

    # -- views ---------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """What the console shows: the twin, its policy, counts and the latest sim time."""
        return {"twin": self.twin, "run": self.run_id, "network": str(self.cfg.path),
                "controller": self.model_version, "policy": self.policy,
                "impactLevel": self.level, "running": self.running, "simTime": self.sim_time,
                "runs": self.runs, "intersections": len(self.intersections),
                "changes": len(self.applied), **self.counts,
                "published": self.publisher.published if self.publisher else 0,
                "error": type(self.error).__name__ if self.error else None}


__all__ = ["POLICIES", "SYSTEM_ID", "PhaseNotApplicable", "SignalService", "TwinError",
           "TwinStopped"]
