"""Why an image is or is not prepulled on a node: the facts, and one answer composed from them.

The operator names an image (a tag, ``registry/repository:tag`` or a digest) and a node;
``parse_image_query`` reads the name. An adapter gathers what the ledger knows into an
``ExplainInput``; ``explain`` composes the answer: whether the image is a prepull target
and why (``worker.domain.targets``), whether the node is known, selected and eligible,
whether the digest is there and how that is known, and where its prepulls stand (in
flight, failed with the next retry after back-off, parked). Whether the next plan would
request the pair is decided by the planner itself (``plan_prepulls``), not re-derived.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from attrs import frozen

from worker.domain.events import (
    Event,
    PrepullFailed,
    PrepullParked,
    PrepullRequested,
    PrepullSucceeded,
    PrepullUnparked,
)
from worker.domain.nodes import Taint, Toleration, matches_selector
from worker.domain.policy import PrepullPolicy
from worker.domain.prepull import (
    PairState,
    PlanInput,
    PrepullSettings,
    PrepullTarget,
    backoff_delay,
    plan_prepulls,
)
from worker.domain.projection import NodeImageRow, NodeRow
from worker.domain.references import DockerReference, InvalidReferenceError
from worker.domain.targets import NewerTag, TagFacts, TargetRow, target_findings

__all__ = [
    "Attempt",
    "ExplainInput",
    "Explanation",
    "Finding",
    "ImageQuery",
    "attempt_of",
    "explain",
    "parse_image_query",
]

_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-f0-9]{32,}")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@frozen
class ImageQuery:
    """What the operator named: a tag (optionally in one repository) or a digest."""

    tag: str | None = None
    digest: str | None = None
    registry: str | None = None
    repository: str | None = None

    def __str__(self) -> str:
        if self.registry is not None and self.repository is not None:
            return str(DockerReference(self.registry, self.repository, self.tag, self.digest))
        return self.tag or self.digest or ""


def parse_image_query(text: str) -> ImageQuery:
    """A tag, ``registry/repository:tag[@digest]``, ``registry/repository@digest`` or a
    digest (``sha256:...``); InvalidReferenceError says what is wrong otherwise."""
    if "/" in text:
        ref = DockerReference.parse(text)
        if ref.tag is None and ref.digest is None:
            raise InvalidReferenceError(f'Docker reference "{text}" has neither tag nor digest')
        return ImageQuery(ref.tag, ref.digest, ref.registry, ref.repository)
    if ":" in text:
        if not _DIGEST.fullmatch(text):
            raise InvalidReferenceError(f'"{text}" is neither a tag nor a digest (sha256:...)')
        return ImageQuery(digest=text)
    if not _TAG.fullmatch(text):
        raise InvalidReferenceError(f'"{text}" is not a valid tag')
    return ImageQuery(tag=text)


@frozen
class Attempt:
    """One prepull event of the pair from the log: ``requested``, ``succeeded``, ``failed``,
    ``parked`` or ``unparked``, with its reason or attempt number."""

    at: datetime
    kind: str
    detail: str | None = None


def attempt_of(event: Event) -> Attempt | None:
    """The prepull attempt an event records, or None for other events."""
    if isinstance(event, PrepullRequested):
        return Attempt(event.occurred_at, "requested", f"attempt {event.attempt}")
    if isinstance(event, PrepullSucceeded):
        return Attempt(event.occurred_at, "succeeded", f"pod {event.pod}" if event.pod else None)
    if isinstance(event, PrepullFailed | PrepullParked | PrepullUnparked):
        kind = {PrepullFailed: "failed", PrepullParked: "parked"}.get(type(event), "unparked")
        return Attempt(event.occurred_at, kind, event.reason)
    return None


@frozen
class ExplainInput:
    """Everything the ledger knows that bears on one image and one node."""

    image: TagFacts
    node_name: str
    now: datetime
    settings: PrepullSettings = PrepullSettings()
    targets: tuple[TargetRow, ...] = ()
    policy: PrepullPolicy | None = None
    node_selector: Mapping[str, str] | None = None
    tolerations: tuple[Toleration, ...] = ()
    newer: tuple[NewerTag, ...] = ()
    node: NodeRow | None = None
    pair: NodeImageRow | None = None
    attempts: tuple[Attempt, ...] = ()
    in_flight_on_node: tuple[PairState, ...] = ()
    """Other pairs of the node with a request in flight."""
    in_flight_total: int = 0


@frozen
class Finding:
    """One line of the answer: its topic (image, target, node, presence, prepull), whether
    it is in favour of the prepull (None: neutral), and the sentence."""

    topic: str
    ok: bool | None
    text: str


@frozen
class Explanation:
    """The answer: a verdict, one summary sentence and the findings behind it."""

    image: str
    node: str
    digest: str | None
    verdict: str
    """``present``, ``in_flight``, ``planned``, ``waiting``, ``parked`` or ``not_planned``."""
    summary: str
    target: bool
    pulled_as: str | None
    node_known: bool
    node_selected: bool | None
    node_eligible: bool | None
    present: bool | None
    parked: bool
    next_retry_at: datetime | None
    findings: tuple[Finding, ...]


def _at(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "?"


# --------------------------------------------------------------------------- the node


def _selected(facts: ExplainInput, node: NodeRow) -> bool:
    if facts.node_selector is not None:
        return matches_selector(node.labels, facts.node_selector)
    return node.comment != "Node does not match the node selector"


def _taint_text(taint: Taint) -> str:
    what = f"{taint.key} = {taint.value}" if taint.value else taint.key
    return f"{taint.effect}, {what}"


def _node_findings(facts: ExplainInput) -> tuple[list[Finding], bool | None]:
    node = facts.node
    if node is None:
        text = f"node {facts.node_name} is not known: it never reported an inventory"
        return [Finding("node", False, text)], None
    found: list[Finding] = []
    if node.gone_at is not None:
        found.append(Finding("node", False, f"node left the cluster at {_at(node.gone_at)}"))
    selected = _selected(facts, node)
    if facts.node_selector:
        pairs = ", ".join(f"{k}={v}" for k, v in sorted(facts.node_selector.items()))
        verb = "matches" if selected else "does not match"
        found.append(Finding("node", selected, f"node {verb} the node selector ({pairs})"))
    elif facts.node_selector is not None:
        found.append(Finding("node", True, "no node selector: every node is selected"))
    untolerated = [t for t in node.taints if t.effect != "PreferNoSchedule"]
    for taint in untolerated:
        ok = any(t.tolerates(taint) for t in facts.tolerations)
        state = "tolerated" if ok else "not tolerated"
        found.append(Finding("node", ok, f"taint ({_taint_text(taint)}) {state}"))
    if node.eligible:
        found.append(Finding("node", True, "node is eligible for lab pods and prepulls"))
    else:
        found.append(Finding("node", False, f"node is not eligible: {node.comment or '?'}"))
    return found, selected


# --------------------------------------------------------------------------- presence


def _presence_findings(facts: ExplainInput) -> list[Finding]:
    pair, node = facts.pair, facts.node
    if pair is not None and pair.present is True:
        how = "a successful prepull pod" if pair.source == "prepull" else "the kubelet image list"
        since = f", present since {_at(pair.present_since)}" if pair.present_since else ""
        text = f"digest is on the node: seen by {how} at {_at(pair.observed_at)}{since}"
        return [Finding("presence", True, text)]
    if pair is not None and pair.present is False:
        text = f"digest is not on the node: absent from the kubelet list at {_at(pair.observed_at)}"
        return [Finding("presence", False, text)]
    text = "no observation of this digest on the node"
    if node is not None and node.last_inventory_at is None:
        text += " (the node never reported a kubelet image list)"
    elif node is not None and node.truncated:
        text += (
            f" (the newest kubelet list, at {_at(node.last_inventory_at)}, was truncated at"
            f" {node.image_count} entries: it proves presence, not absence)"
        )
    return [Finding("presence", None, text)]


# --------------------------------------------------------------------------- prepulls


def _next_retry(facts: ExplainInput) -> datetime | None:
    pair = facts.pair
    if pair is None or pair.prepull_state != "failed" or pair.prepull_finished_at is None:
        return None
    return pair.prepull_finished_at + backoff_delay(pair.prepull_failures, facts.settings)


def _attempt_findings(facts: ExplainInput) -> list[Finding]:
    pair = facts.pair
    if pair is None or pair.prepull_requests == 0:
        return [Finding("prepull", None, "no prepull was ever requested for this pair")]
    counts = (
        f"{pair.prepull_requests} prepull request(s), {pair.prepull_failures_total} failure(s)"
        f" in all, {pair.prepull_failures} consecutive (parked after"
        f" {facts.settings.max_attempts})"
    )
    found = [Finding("prepull", None, counts)]
    for attempt in facts.attempts:
        if attempt.kind in ("failed", "parked", "unparked"):
            text = f"{attempt.kind} at {_at(attempt.at)}: {attempt.detail or '?'}"
            found.append(Finding("prepull", attempt.kind == "unparked", text))
    if pair.prepull_state == "requested":
        since, deadline = _at(pair.prepull_requested_at), _at(pair.prepull_deadline)
        text = f"in flight since {since}, deadline {deadline}"
        overdue = pair.prepull_deadline is not None and pair.prepull_deadline <= facts.now
        found.append(Finding("prepull", not overdue, text + (" (overdue)" if overdue else "")))
    retry = _next_retry(facts)
    if retry is not None:
        when = "now" if retry <= facts.now else _at(retry)
        found.append(Finding("prepull", retry <= facts.now, f"next retry after back-off: {when}"))
    if pair.prepull_state == "parked":
        text = f"parked: {pair.prepull_reason or '?'} (`imageledger unpark` tries again)"
        found.append(Finding("prepull", False, text))
    return found


def _plan_for(facts: ExplainInput, target: PrepullTarget) -> tuple[bool, bool]:
    """What the planner would do with this pair at ``now`` (caps included): (request it,
    park it)."""
    pair = facts.pair or NodeImageRow(facts.node_name, facts.image.digest or "")
    state = PairState(
        node=facts.node_name,
        digest=target.digest,
        present=pair.present is True,
        state=pair.prepull_state,
        requests=pair.prepull_requests,
        failures=pair.prepull_failures,
        deadline=pair.prepull_deadline,
        finished_at=pair.prepull_finished_at,
    )
    pairs = {(p.node, p.digest): p for p in facts.in_flight_on_node}
    pairs[(facts.node_name, target.digest)] = state
    snapshot = PlanInput((target,), (facts.node_name,), pairs)
    plan = plan_prepulls(snapshot, facts.settings, facts.now)
    mine = (facts.node_name, target.digest)
    requested = any((r.node, r.target.digest) == mine for r in plan.requests)
    parked = any(
        isinstance(f.event, PrepullParked) and (f.event.node, f.event.digest) == mine
        for f in plan.facts
    )
    capped = facts.in_flight_total >= facts.settings.in_flight_total
    return requested and not capped, parked


def _node_verdict(facts: ExplainInput) -> str | None:
    """Why the node gets no prepulls, or None when it gets them."""
    node = facts.node
    if node is None:
        return "the node is not known"
    if node.gone_at is not None:
        return "the node left the cluster"
    if not node.eligible:
        return f"the node is not eligible ({node.comment or 'no reason recorded'})"
    return None


def _verdict(facts: ExplainInput, pulled: TargetRow | None) -> tuple[str, str]:
    image = facts.image
    pair = facts.pair or NodeImageRow(facts.node_name, image.digest or "")
    if pair.present is True:
        return "present", "the image is on the node"
    if image.digest is None:
        return "not_planned", "not planned: the tag's digest is not known yet"
    if pulled is None:
        return "not_planned", "not planned: the image is not a prepull target"
    node_reason = _node_verdict(facts)
    if node_reason is not None:
        return "not_planned", f"not planned: {node_reason}"
    if pair.prepull_state == "parked":
        return "parked", "parked after repeated failures: no more attempts until unparked"
    if pair.prepull_state == "requested":
        return "in_flight", "a prepull is in flight"
    target = PrepullTarget(image.registry, image.repository, pulled.tag, image.digest, 0)
    requested, parks = _plan_for(facts, target)
    if parks:
        return "parked", "the next plan parks the pair: too many consecutive failures"
    if requested:
        return "planned", "planned: the next plan requests a prepull"
    retry = _next_retry(facts)
    if retry is not None and retry > facts.now:
        return "waiting", f"waiting: retried after back-off, at {_at(retry)}"
    return "waiting", "waiting: the node or the cluster has as many prepulls in flight as allowed"


def explain(facts: ExplainInput) -> Explanation:
    """The answer for one image and one node."""
    image = facts.image
    target, pulled, target_found = target_findings(image, facts.targets, facts.policy, facts.newer)
    node_found, selected = _node_findings(facts)
    node = facts.node
    findings = [*(Finding(*f) for f in target_found), *node_found, *_presence_findings(facts)]
    if node is not None:
        findings.extend(_attempt_findings(facts))
    verdict, summary = _verdict(facts, pulled)
    pair = facts.pair or NodeImageRow(facts.node_name, facts.image.digest or "")
    return Explanation(
        image=str(DockerReference(image.registry, image.repository, image.tag, image.digest)),
        node=facts.node_name,
        digest=image.digest,
        verdict=verdict,
        summary=summary,
        target=target,
        pulled_as=pulled.tag if pulled is not None else None,
        node_known=node is not None,
        node_selected=selected,
        node_eligible=node.eligible if node is not None else None,
        present=pair.present,
        parked=pair.prepull_state == "parked",
        next_retry_at=_next_retry(facts),
        findings=tuple(findings),
    )
