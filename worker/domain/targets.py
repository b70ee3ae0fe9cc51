"""Why a tag is or is not a prepull target, in the words of the policy that decided it.

The prepull set itself is decided once, by ``worker.domain.policy.prepull_candidates``, and
stored (``ledger.prepull_targets``); this module only explains a stored answer: the
recommended tag, a pin, the newest N of a type (and where the tag ranks), or the rule that
kept it out (architecture suffix, SAL cycle, an older build, a type that is never counted).
"""

from __future__ import annotations

from attrs import frozen

from worker.domain.policy import PrepullPolicy

__all__ = ["NewerTag", "TagFacts", "TargetRow", "policy_reasons", "target_findings"]

_COUNTED = {
    "Release": ("num_releases", "numReleases", "release", "releases"),
    "Weekly": ("num_weeklies", "numWeeklies", "weekly", "weeklies"),
    "Daily": ("num_dailies", "numDailies", "daily", "dailies"),
}


@frozen
class TagFacts:
    """A tag as ``dashboard.tags`` shows it now."""

    registry: str
    repository: str
    tag: str
    digest: str | None
    image_type: str
    """After alias resolution."""
    parsed_type: str
    """From the tag grammar alone."""
    display_name: str
    architecture: str | None = None
    cycle: int | None = None
    alias_target: str | None = None
    aliases: tuple[str, ...] = ()
    flagged: bool = False


@frozen
class TargetRow:
    """A ``dashboard.prepull_targets`` row of the tag's repository (this tag or digest)."""

    tag: str
    digest: str | None
    display_name: str
    image_type: str
    pull: bool


@frozen
class NewerTag:
    """A current tag of the same parsed type that sorts newer than the one explained."""

    tag: str
    architecture: str | None = None
    cycle: int | None = None


Reason = tuple[bool | None, str]


def _rank_reason(image: TagFacts, policy: PrepullPolicy, newer: tuple[NewerTag, ...]) -> Reason:
    attribute, key, noun, plural = _COUNTED[image.parsed_type]
    limit: int = getattr(policy, attribute)
    counted = [
        n
        for n in newer
        if n.architecture is None and (policy.cycle is None or n.cycle == policy.cycle)
    ]
    rank = len(counted) + 1
    setting = f"images.{key}: {limit}"
    if rank <= limit:
        if rank == 1:
            return True, f"it is the newest {noun} ({setting})"
        return True, f"it is number {rank} of the newest {limit} {plural} ({setting})"
    shown = ", ".join(n.tag for n in counted[:3])
    newest = f"; newest: {shown}" if shown else ""
    return False, (
        f"it is number {rank} of the {plural}: only the newest {limit} are prepulled"
        f" ({setting}{newest})"
    )


def policy_reasons(
    image: TagFacts, policy: PrepullPolicy | None, newer: tuple[NewerTag, ...] = ()
) -> list[Reason]:
    """What the policy says of the tag: (in favour, sentence), decisive rules first."""
    if policy is None:
        return [(None, "no prepull policy recorded yet (a refresh records it)")]
    if image.architecture is not None:
        return [(False, f"architecture-specific tags (-{image.architecture}) are never prepulled")]
    if policy.cycle is not None and image.cycle != policy.cycle:
        has = f"cycle {image.cycle}" if image.cycle is not None else "no cycle"
        text = f"only tags of SAL cycle {policy.cycle} are kept (images.cycle); this one has {has}"
        return [(False, text)]
    reasons: list[Reason] = []
    if image.tag == policy.recommended_tag:
        reasons.append((True, "it is the recommended tag (images.recommendedTag)"))
    if image.tag in policy.pin:
        reasons.append((True, "it is pinned (images.pin)"))
    if image.parsed_type in _COUNTED:
        reasons.append(_rank_reason(image, policy, newer))
    elif not reasons:
        text = f"{image.parsed_type} images are prepulled only when recommended or pinned"
        reasons.append((False, text))
    return reasons


def _image_finding(image: TagFacts) -> tuple[str, str, bool | None]:
    name = f"{image.tag} ({image.display_name}, {image.image_type})"
    if image.digest is None:
        return "image", f"{name} has no known digest yet: nothing can be pulled", False
    text = f"{name} names {image.digest}"
    if image.alias_target:
        text += f", the image of {image.alias_target}"
    elif image.aliases:
        text += f", also tagged {', '.join(image.aliases)}"
    if image.flagged:
        text += " (the last refresh could not verify it: last known digest kept)"
    return "image", text, None


def _set_sentence(
    image: TagFacts, own: TargetRow | None, pulled: TargetRow | None
) -> tuple[bool, str]:
    if own is None and pulled is None:
        return False, "not a prepull target"
    if own is None and pulled is not None:
        return True, (
            f"not in the prepull set itself, but its digest is: pulled as {pulled.tag}"
            f" ({pulled.display_name})"
        )
    if pulled is None:
        if image.digest is None:
            return False, "a prepull target, but its digest is not known yet"
        return False, "in the prepull set, but not pulled"
    if pulled.tag == image.tag:
        return True, "a prepull target: prepull pods pull this tag"
    return True, f"a prepull target; its digest is pulled as {pulled.tag} (one image per digest)"


def target_findings(
    image: TagFacts,
    targets: tuple[TargetRow, ...],
    policy: PrepullPolicy | None,
    newer: tuple[NewerTag, ...] = (),
) -> tuple[bool, TargetRow | None, list[tuple[str, bool | None, str]]]:
    """Whether the image's digest is pulled, the row that pulls it, and the findings
    (topic, in favour, sentence) saying why."""
    own = next((t for t in targets if t.tag == image.tag), None)
    pulled = next(
        (t for t in targets if t.pull and image.digest and t.digest == image.digest), None
    )
    topic, text, ok = _image_finding(image)
    findings: list[tuple[str, bool | None, str]] = [(topic, ok, text)]
    is_target, sentence = _set_sentence(image, own, pulled)
    findings.append(("target", is_target, sentence))
    reasons = policy_reasons(image, policy, newer)
    findings.extend(("target", ok, f"policy: {text}") for ok, text in reasons)
    policy_says = any(ok for ok, _ in reasons)
    stale = (policy_says and not is_target) or (own is not None and not policy_says)
    if policy is not None and stale:
        findings.append(
            ("target", None, "the stored prepull set predates this policy: a refresh updates it")
        )
    return is_target, pulled, findings
