"""Which dead letters an operator's selection names (``worker.domain.dead_letters``)."""

from __future__ import annotations

from worker.domain.dead_letters import DeadLetter, Selection


def letter(message_id: str, routing_key: str = "node.inventory") -> DeadLetter:
    return DeadLetter(message_id, routing_key, "q", "bad", 1, None, 0, b"{}")


LETTERS = [letter("a"), letter("b", "prepull.pod_completed"), letter("c")]


def test_ids_routing_keys_and_everything() -> None:
    def named(selection: Selection) -> list[str]:
        return [x.message_id for x in LETTERS if selection(x)]

    assert named(Selection(frozenset({"a", "b"}))) == ["a", "b"]
    assert named(Selection(routing_key="node.inventory", everything=True)) == ["a", "c"]
    assert named(Selection(frozenset({"a", "b"}), routing_key="node.inventory")) == ["a"]
    assert named(Selection(everything=True)) == ["a", "b", "c"]


def test_missing_ids_are_those_no_letter_found_has() -> None:
    selection = Selection(frozenset({"a", "zz", "b"}))
    assert selection.missing([letter("a")]) == ["b", "zz"]
    assert Selection(everything=True).missing([]) == []
