"""What the twin reads at each traffic light: discovery from the network and observation.

Discovery finds, per light, the network's green phases, the lanes each serves (incoming lanes
extended upstream, outgoing lanes extended downstream) and the lanes inside the junction;
observation reads queues, room downstream and vehicles inside the junction at a decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

GREEN = frozenset("Gg")


# ---------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class Segment:
    """Part of a lane watched by a detector: positions in [start, end) (0, inf = whole lane)."""

    lane: str
    start: float
    end: float = math.inf

    @property
    def whole(self) -> bool:
        return self.start <= 0.0 and self.end == math.inf


@dataclass
class Intersection:
    """One controlled traffic light, as discovered from the network's own program."""

    id: str
    program: str
    states: list[str]  # every phase of the network's program, in order
    durations: list[float]
    greens: list[int]  # indices into states: the green phases a controller may choose
    # per signal index: its first connection (incoming lane, outgoing lane), "" if none
    links: list[tuple[str, str]]
    in_lanes: list[str]
    out_lanes: list[str]
    phase_in: list[list[str]]  # per green (position in greens): incoming lanes it serves
    phase_out: list[list[str]]
    detect: dict[str, list[Segment]] = field(default_factory=dict)  # lane -> watched segments
    # outgoing lane -> the lane and, when it is short, the lanes after it (spillback watch)
    downstream: dict[str, list[Segment]] = field(default_factory=dict)
    room_length: dict[str, float] = field(default_factory=dict)  # metres watched downstream
    # per green: for each incoming lane it serves, the outgoing lanes it feeds in that green
    phase_links: list[dict[str, list[str]]] = field(default_factory=list)
    via: list[list[str]] = field(default_factory=list)  # per signal index: lanes inside it
    # per signal index: every outgoing lane of its connections (one index may control
    # several, e.g. a straight and a right turn from two lanes); `links` keeps the first
    exits: list[list[str]] = field(default_factory=list)
    # per signal index: every (incoming, outgoing) connection it controls; empty: `links` only
    conns: list[list[tuple[str, str]]] = field(default_factory=list)
    # exits whose watched stretch ends at another light before spill_length (a short link
    # between two lights) and the signal indices leading into them: watched every step
    short_out: list[str] = field(default_factory=list)
    short_links: frozenset[int] = frozenset()
    # pedestrian crossings: signal index -> (walking area lane, crossing lane) pairs
    crossings: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    # signal indices whose green waits for the box (``box_clear``): every pedestrian
    # crossing and, at a light with crossings, every vehicle link; each with the vehicle
    # signal indices whose lanes inside the junction cross its path
    box_foes: dict[int, frozenset[int]] = field(default_factory=dict)
    # the junction's walking areas and crossings (edges), where people slow the vehicles
    walk_edges: list[str] = field(default_factory=list)

    def green_state(self, g: int) -> str:
        return self.states[self.greens[g]]

    def shown(self, g: int, held: frozenset[int] = frozenset(),
              clearing: frozenset[int] = frozenset()) -> str:
        """Green g as shown: links held red (their exit is full) 'r', links being held 'y'."""
        state = self.green_state(g)
        if not held and not clearing:
            return state
        return "".join("r" if k in held else "y" if k in clearing else c
                       for k, c in enumerate(state))

    def phase_of(self, state: str) -> int | None:
        """The green a shown state belongs to: its own state, or it with some of its green
        links held red (``shown``); None during any yellow and for other states."""
        for g in range(len(self.greens)):
            if self.green_state(g) == state:
                return g
        if "y" in state or not any(c in GREEN for c in state):
            return None
        for g in range(len(self.greens)):
            gs = self.green_state(g)
            if len(gs) == len(state) and all(a == b or (a in GREEN and b == "r")
                                             for a, b in zip(gs, state, strict=True)):
                return g
        return None

    def yellow_between(self, a: int, b: int) -> str:
        """The network's yellow after green a, with every link that loses green turned yellow.

        The network's own yellow is kept when it already covers the change; a link that would
        go straight from green to red (possible when skipping phases) gets 'y' as well."""
        src, dst = self.green_state(a), self.green_state(b)
        i = self.greens[a]
        nxt = self.states[(i + 1) % len(self.states)]
        base = nxt if "y" in nxt else src
        out = []
        for k, (s, d) in enumerate(zip(src, dst, strict=True)):
            if s in GREEN and d not in GREEN:
                out.append("y")
            elif s in GREEN:
                out.append(base[k] if base[k] in "yGg" else s)
            else:
                out.append(base[k] if base[k] in "ry" else s)
        return "".join(out)

    def connections(self, k: int) -> list[tuple[str, str]]:
        """Every (incoming, outgoing) lane pair signal index k controls."""
        if k < len(self.conns):
            return self.conns[k]
        a, b = self.links[k]
        return [(a, b)] if a else []

    def serving(self, link_index: int) -> list[int]:
        """Greens (positions) that give link_index green, protected ('G') first."""
        full = [g for g in range(len(self.greens)) if self.green_state(g)[link_index] == "G"]
        part = [g for g in range(len(self.greens)) if self.green_state(g)[link_index] == "g"]
        return full + part


def is_green_phase(state: str) -> bool:
    return any(c in GREEN for c in state) and "y" not in state.lower()


def extend_upstream(lane: str, net: Any, length: float, tls_nodes: set[str]) -> list[Segment]:
    """Segments covering `length` metres upstream of the stop line of `lane`.

    Walks through predecessor lanes (sumolib) when the lane is shorter than `length`; stops at
    junctions controlled by a traffic light, whose queues belong to that light."""
    first = net.getLane(lane)
    if first.getLength() >= length:
        return [Segment(lane, 0.0)]
    out = [Segment(lane, 0.0)]
    frontier = [(first, length - first.getLength())]
    seen = {lane}
    while frontier:
        cur, rest = frontier.pop()
        node = cur.getEdge().getFromNode()
        if node.getID() in tls_nodes:
            continue
        for pred in cur.getIncoming():
            pid = pred.getID()
            if pid in seen or pid.startswith(":"):
                continue
            seen.add(pid)
            plen = pred.getLength()
            if plen >= rest:
                out.append(Segment(pid, plen - rest))
            else:
                out.append(Segment(pid, 0.0))
                frontier.append((pred, rest - plen))
    return out


def extend_downstream(lane: str, net: Any, length: float,
                      tls_nodes: set[str]) -> tuple[list[Segment], float]:
    """Segments covering at least `length` metres after the start of outgoing `lane`, and the
    metres they watch.

    A 10 m outgoing lane holds one car, so whether a movement can discharge depends on the
    lanes behind it; the walk follows successors through junctions without a light (each
    branch fully, so the room of branches adds up) and stops at another light's junction."""
    first = net.getLane(lane)
    out, watched = [Segment(lane, 0.0)], first.getLength()
    frontier = [(first, length - first.getLength())]
    seen = {lane}
    while frontier:
        cur, rest = frontier.pop()
        if rest <= 0 or cur.getEdge().getToNode().getID() in tls_nodes:
            continue
        for link in cur.getOutgoing():
            nxt = link.getToLane()
            nid = nxt.getID()
            if nid in seen or nid.startswith(":"):
                continue
            seen.add(nid)
            nlen = nxt.getLength()
            if nlen > rest:
                out.append(Segment(nid, 0.0, rest))
                watched += rest
            else:
                out.append(Segment(nid, 0.0))
                watched += nlen
                frontier.append((nxt, rest - nlen))
    return out, watched


def _internal_chain(conn: Any, via: str) -> list[str]:
    """The lanes a link's vehicles use inside the junction: a turn that waits for a gap
    halfway has two (SUMO's internal junction splits it)."""
    chain = [via] if via else []
    while chain and len(chain) < 4:
        links = conn.lane.getLinks(chain[-1])
        if not links:
            break
        nxt = links[0][0] if links[0][0].startswith(":") else links[0][4]
        if not nxt or not nxt.startswith(":") or nxt in chain:
            break
        chain.append(nxt)
    return chain


def _box_foes(conn: Any, crossings: dict[int, list[tuple[str, str]]],
              via: list[list[str]]) -> dict[int, frozenset[int]]:
    """Per crossing and, where there are crossings, per vehicle link: the vehicle links whose
    lanes inside the junction cross its path (SUMO's own conflict matrix, read through the
    internal foes of the crossing's or the link's lanes)."""
    if not crossings:
        return {}
    out: dict[int, frozenset[int]] = {}
    for k in range(len(via)):
        lanes = [cross for _walk, cross in crossings[k]] if k in crossings else via[k]
        foes: set[str] = set()
        for lane in lanes:
            foes.update(conn.lane.getInternalFoes(lane))
        hit = frozenset(j for j, chain in enumerate(via) if j != k and foes.intersection(chain))
        if hit:
            out[k] = hit
    return out


def light_nodes(net: Any) -> set[str]:
    """Junctions controlled by a traffic light (the node type alone misses clusters and
    right-on-red lights)."""
    nodes = {n.getID() for n in net.getNodes() if n.getType().startswith("traffic_light")}
    for tls in net.getTrafficLights():
        for conn in tls.getConnections():
            nodes.add(conn[0].getEdge().getToNode().getID())
    return nodes


def discover(conn: Any, net: Any, detect_length: float,
             spill_length: float = 50.0) -> list[Intersection]:
    """Every traffic light that has at least two distinct green phases in its active program."""
    tls_nodes = light_nodes(net)
    result = []
    for tid in conn.trafficlight.getIDList():
        prog = conn.trafficlight.getProgram(tid)
        logics = conn.trafficlight.getAllProgramLogics(tid)
        logic = next((lg for lg in logics if lg.programID == prog), logics[0] if logics else None)
        if logic is None:
            continue
        states = [p.state for p in logic.phases]
        durations = [float(p.duration) for p in logic.phases]
        greens, seen_states = [], set()
        for i, s in enumerate(states):
            if is_green_phase(s) and s not in seen_states:
                greens.append(i)
                seen_states.add(s)
        if len(greens) < 2:
            continue
        links, via, exits, conns = [], [], [], []
        crossings: dict[int, list[tuple[str, str]]] = {}
        for k, all_links in enumerate(conn.trafficlight.getControlledLinks(tid)):
            # a pedestrian crossing's link runs from a walking area (a lane inside the
            # junction) onto the crossing: kept apart, no vehicle detector watches it
            walk = [(c[0], c[1]) for c in all_links if c[0].startswith(":") and c[1]]
            if walk:
                crossings[k] = sorted(set(walk))
            group = [c for c in all_links if not c[0].startswith(":")]
            links.append((group[0][0], group[0][1]) if group else ("", ""))
            exits.append(sorted({c[1] for c in group if c[1]}))
            # one signal index may control connections from several lanes (ingolstadt21's
            # 243641585: a left turn from a second lane); every one of them is watched
            pairs: list[tuple[str, str]] = []
            for c in group:
                if c[0] and c[1] and (c[0], c[1]) not in pairs:
                    pairs.append((c[0], c[1]))
            conns.append(pairs)
            # the lanes inside the junction of every connection (turners wait there)
            chain: list[str] = []
            for c in group:
                for lane in _internal_chain(conn, c[2]) if len(c) > 2 else []:
                    if lane not in chain:
                        chain.append(lane)
            via.append(chain)
        in_lanes = sorted({a for pairs in conns for a, _ in pairs})
        out_lanes = sorted({b for pairs in conns for _, b in pairs})
        phase_in, phase_out, phase_links = [], [], []
        for g in greens:
            served = [k for k, c in enumerate(states[g]) if c in GREEN and k < len(links)]
            phase_in.append(sorted({a for k in served for a, _ in conns[k]}))
            phase_out.append(sorted({b for k in served for _, b in conns[k]}))
            feeds: dict[str, list[str]] = {}
            for k in served:
                for a, b in conns[k]:
                    if b not in feeds.setdefault(a, []):
                        feeds[a].append(b)
            phase_links.append(feeds)
        inter = Intersection(tid, prog, states, durations, greens, links, in_lanes, out_lanes,
                             phase_in, phase_out, phase_links=phase_links, via=via,
                             exits=exits, conns=conns, crossings=crossings,
                             box_foes=_box_foes(conn, crossings, via),
                             walk_edges=sorted({lane.rsplit("_", 1)[0]
                                                for pairs in crossings.values()
                                                for pair in pairs for lane in pair}))
        for lane in in_lanes:
            inter.detect[lane] = extend_upstream(lane, net, detect_length, tls_nodes)
        for lane in out_lanes:
            segs, watched = extend_downstream(lane, net, spill_length, tls_nodes)
            inter.downstream[lane], inter.room_length[lane] = segs, watched
            if watched < spill_length - 0.01:  # (a walk that went the whole way sums to it)
                inter.short_out.append(lane)
        short = set(inter.short_out)
        inter.short_links = frozenset(k for k, e in enumerate(exits) if short & set(e))
        result.append(inter)
    return result


# ---------------------------------------------------------------------------- observation


# SUMO's default minimum gap (m); standing vehicles occupy their length plus this
MIN_GAP = 2.5


@dataclass
class LaneState:
    queue: float = 0.0  # halting vehicles (speed < 0.1 m/s)
    count: float = 0.0  # all vehicles
    wait: float = 0.0  # summed waiting time (s)
    head_wait: float = 0.0  # incoming: waiting time of the vehicle nearest the stop line (s)
    head_to: str = ""  # incoming: the outgoing lane that vehicle takes next ("" if unknown)
    room: float = math.inf  # outgoing: vehicles that still fit in the watched stretch
    room_halted: float = math.inf  # the same counting only halted vehicles as occupying


@dataclass
class Observation:
    """What a controller sees of one intersection at a decision step."""

    time: float
    current: int  # position in Intersection.greens
    green_time: float  # seconds the current green has been shown
    lanes: dict[str, LaneState]
    red: list[float] = field(default_factory=list)  # per signal link: seconds since last green
    decision: float = 10.0  # seconds until the next decision
    yellow: float = 3.0  # yellow shown before a new green
    inside: list[int] = field(default_factory=list)  # per link: vehicles inside the junction
    # per pedestrian crossing (signal index): the longest a person has waited to cross (s)
    walkers: dict[int, float] = field(default_factory=dict)


def _segment(conn: Any, seg: Segment, st: LaneState, with_wait: bool) -> float:
    """Add the vehicles of one watched segment to st; returns metres they occupy."""
    L = conn.lane
    if seg.whole:
        n = L.getLastStepVehicleNumber(seg.lane)
        st.queue += L.getLastStepHaltingNumber(seg.lane)
        st.count += n
        if with_wait:
            st.wait += L.getWaitingTime(seg.lane)
        return float(n * (L.getLastStepLength(seg.lane) + MIN_GAP)) if n else 0.0
    V, used = conn.vehicle, 0.0
    for v in L.getLastStepVehicleIDs(seg.lane):
        if seg.start <= V.getLanePosition(v) < seg.end:
            st.count += 1
            if V.getSpeed(v) < 0.1:
                st.queue += 1
            if with_wait:
                st.wait += V.getWaitingTime(v)
            used += V.getLength(v) + MIN_GAP
    return used


def _head(conn: Any, segs: list[Segment]) -> str:
    """The vehicle nearest the stop line: on the lane itself, else on its upstream segments
    (a 1 m entry lane is usually empty while its queue stands on the lane before)."""
    for seg in segs:
        ids = conn.lane.getLastStepVehicleIDs(seg.lane)  # by position: the last leads
        for v in reversed(ids):
            if conn.vehicle.getLanePosition(v) >= seg.start:
                return str(v)
    return ""


def observe_lanes(conn: Any, inter: Intersection) -> dict[str, LaneState]:
    """Incoming lanes with their upstream extension; outgoing lanes (queue and count of the
    lane itself, as max-pressure defines them) with the room left downstream."""
    lanes: dict[str, LaneState] = {}
    outs = set(inter.out_lanes)
    for lane, segs in inter.detect.items():
        st = LaneState()
        for seg in segs:
            _segment(conn, seg, st, True)
        head = _head(conn, segs)
        if head:
            st.head_wait = conn.vehicle.getWaitingTime(head)
            # the head's link at this light: the first of its next links leaving here
            for link in conn.vehicle.getNextLinks(head)[:len(segs) + 1]:
                if link[0] in outs:
                    st.head_to = link[0]
                    break
        lanes[lane] = st
    observe_exits(conn, inter, inter.out_lanes, lanes)
    return lanes


def observe_exits(conn: Any, inter: Intersection, exits: list[str],
                  lanes: dict[str, LaneState] | None = None) -> dict[str, LaneState]:
    """Outgoing lanes: their own queue and count, and the room left in the watched stretch."""
    L = conn.lane
    lanes = {} if lanes is None else lanes
    for lane in exits:
        segs = inter.downstream.get(lane, [Segment(lane, 0.0)])
        span = LaneState()
        used = sum(_segment(conn, seg, span, False) for seg in segs)
        watched = inter.room_length.get(lane, L.getLength(lane))
        # metres per vehicle at standstill, from the vehicles seen (or a car's)
        per = used / span.count if span.count else 5.0 + MIN_GAP
        room = max(0.0, (watched - used) / per)
        room_halted = max(0.0, (watched - span.queue * per) / per)
        if lane in lanes:  # also an incoming lane of this light (a loop): keep both views
            lanes[lane].room, lanes[lane].room_halted = room, room_halted
            continue
        if segs[0].whole and len(segs) == 1:
            q, c = span.queue, span.count
        else:
            q, c = L.getLastStepHaltingNumber(lane), L.getLastStepVehicleNumber(lane)
        lanes[lane] = LaneState(q, c, room=room, room_halted=room_halted)
    return lanes


def waiting_walkers(conn: Any, inter: Intersection) -> dict[int, float]:
    """Per pedestrian crossing with someone waiting at it: the longest wait (s)."""
    out: dict[int, float] = {}
    if not inter.crossings:
        return out
    P = conn.person
    for k, pairs in inter.crossings.items():
        for walk, cross in pairs:
            w_edge, c_edge = walk.rsplit("_", 1)[0], cross.rsplit("_", 1)[0]
            for p in conn.edge.getLastStepPersonIDs(w_edge):
                if P.getSpeed(p) < 0.1 and P.getNextEdge(p) == c_edge:
                    out[k] = max(out.get(k, 0.0), P.getWaitingTime(p))
    return out


def inside_junction(conn: Any, inter: Intersection) -> list[int]:
    """Per link: vehicles on its lanes inside the junction (turners waiting for a gap)."""
    count = conn.lane.getLastStepVehicleNumber
    return [sum(count(v) for v in chain) for chain in inter.via]


#: the longest a green waits for vehicles inside the junction that cross its path (s)
BOX_WAIT = 10.0


def box_clear(conn: Any, inter: Intersection, among: frozenset[int]) -> frozenset[int]:
    """The links of ``among`` to keep red for now: vehicles still inside the junction would
    cross their path (only links in ``Intersection.box_foes`` ever wait).

    Found on a grid with people, where lights locked for good (no vehicle teleports). A
    vehicle still inside when its green ended stopped for the people who then got the
    crossing in front of it, and turners of the next green queued behind it; or two streams,
    each slowed in the box by people, entered it on consecutive greens and stopped across each
    other's path. Either way vehicles of several approaches ended up waiting on each other
    inside the box. So a crossing that turns green, and at a light with crossings, while
    someone is on them or on its walking areas, a vehicle link that turns green, waits until
    the vehicles that would cross its path have left."""
    if not inter.box_foes:
        return frozenset()
    if not any(conn.edge.getLastStepPersonIDs(e) for e in inter.walk_edges):
        # no one on the junction's walking areas and crossings: nothing slows the vehicles
        # in the box, and holding their foes would only cost time (2 s a trip on the grid
        # without people)
        among = frozenset(k for k in among if k in inter.crossings)
    count = conn.lane.getLastStepVehicleNumber
    busy: dict[int, bool] = {}
    held = []
    for k in among:
        for j in inter.box_foes.get(k, ()):
            if j not in busy:
                busy[j] = any(count(lane) for lane in inter.via[j])
            if busy[j]:
                held.append(k)
                break
    return frozenset(held)


def newly_green(before: str, after: str) -> frozenset[int]:
    """Links green in ``after`` that were not green in ``before``."""
    return frozenset(k for k, c in enumerate(after)
                     if c in GREEN and (k >= len(before) or before[k] not in GREEN))
