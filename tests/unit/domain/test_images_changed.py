"""``images.changed``: the pure comparison of what the spawner saw before and sees after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from worker.converter import decode_outbound_message, encode_message
from worker.domain.changes import (
    Gating,
    ImagesState,
    MenuEntry,
    Offer,
    images_changed,
    images_changes,
    images_state,
)
from worker.domain.messages import ImagesChangedMessage, TaggedImage

T0 = datetime(2077, 11, 1, tzinfo=UTC)
OLD, NEW, DAILY = ("sha256:" + c * 64 for c in "abc")
REG, REPO = "registry.example.org", "lab"


def image(tag: str, digest: str | None) -> TaggedImage:
    return TaggedImage(tag, digest)


def state(
    *,
    menu: tuple[TaggedImage, ...] = (),
    dropdown: tuple[TaggedImage, ...] = (),
    prepull: tuple[TaggedImage, ...] = (),
    recommended: TaggedImage | None = None,
) -> ImagesState:
    return ImagesState(REG, REPO, menu, dropdown, prepull, recommended)


BEFORE = state(
    menu=(image("recommended", OLD), image("d_2077_10_23", DAILY)),
    dropdown=(image("recommended", OLD), image("w_2077_43", OLD), image("d_2077_10_23", DAILY)),
    prepull=(image("w_2077_43", OLD), image("d_2077_10_23", DAILY)),
    recommended=image("recommended", OLD),
)


def changed(before: ImagesState, after: ImagesState, position: int = 7) -> ImagesChangedMessage:
    outgoing = images_changed(before, after, position=position, at=T0)
    assert outgoing is not None
    assert isinstance(outgoing.message, ImagesChangedMessage)
    return outgoing.message


def test_nothing_changed_announces_nothing() -> None:
    assert images_changed(BEFORE, BEFORE, position=7, at=T0) is None
    assert images_changes({BEFORE.key: BEFORE}, {BEFORE.key: BEFORE}, position=7, at=T0) == []


def test_recommended_moved_to_a_new_weekly() -> None:
    after = state(
        menu=(image("recommended", NEW), image("d_2077_10_23", DAILY)),
        dropdown=(
            image("recommended", NEW),
            image("w_2077_44", NEW),
            image("w_2077_43", OLD),
            image("d_2077_10_23", DAILY),
        ),
        prepull=(image("w_2077_44", NEW), image("w_2077_43", OLD), image("d_2077_10_23", DAILY)),
        recommended=image("recommended", NEW),
    )
    message = changed(BEFORE, after)
    assert message == ImagesChangedMessage(
        registry=REG,
        repository=REPO,
        menu_added=(),
        menu_removed=(),
        dropdown_added=("w_2077_44",),
        dropdown_removed=(),
        prepull_added=("w_2077_44",),
        prepull_removed=(),
        moved=("recommended",),
        recommended=image("recommended", NEW),
        changed_at=T0,
    )


def test_prepull_gating_shows_and_hides_menu_entries_in_display_order() -> None:
    after = state(
        menu=(image("recommended", OLD), image("w_2077_43", OLD)),
        dropdown=BEFORE.dropdown,
        prepull=BEFORE.prepull,
        recommended=BEFORE.recommended,
    )
    message = changed(BEFORE, after)
    assert (message.menu_added, message.menu_removed) == (("w_2077_43",), ("d_2077_10_23",))
    assert message.prepull_added == message.prepull_removed == message.moved == ()
    assert message.recommended == BEFORE.recommended


def test_the_recommended_tag_disappearing_is_a_change() -> None:
    after = state(dropdown=BEFORE.dropdown[1:], prepull=BEFORE.prepull)
    message = changed(BEFORE, after)
    assert message.recommended is None
    assert message.menu_removed == ("recommended", "d_2077_10_23")
    assert message.dropdown_removed == ("recommended",)


def test_a_first_refresh_announces_everything() -> None:
    (outgoing,) = images_changes({}, {BEFORE.key: BEFORE}, position=3, at=T0)
    message = outgoing.message
    assert isinstance(message, ImagesChangedMessage)
    assert message.menu_added == ("recommended", "d_2077_10_23")
    assert message.prepull_added == ("w_2077_43", "d_2077_10_23")
    assert message.menu_removed == message.moved == ()


def test_a_repository_gone_from_the_projections_is_announced_empty() -> None:
    (outgoing,) = images_changes({BEFORE.key: BEFORE}, {}, position=3, at=T0)
    assert isinstance(outgoing.message, ImagesChangedMessage)
    assert outgoing.message.prepull_removed == ("w_2077_43", "d_2077_10_23")
    assert outgoing.message.recommended is None


def test_the_message_id_is_stable_per_change_and_position() -> None:
    after = state(menu=BEFORE.menu[:1], dropdown=BEFORE.dropdown, prepull=BEFORE.prepull)

    def message_id(position: int, at: datetime = T0) -> str | None:
        outgoing = images_changed(BEFORE, after, position=position, at=at)
        assert outgoing is not None
        return outgoing.message_id

    assert message_id(7) == message_id(7, T0 + timedelta(hours=1))  # a refold: same id
    assert message_id(7) != message_id(8)  # the same change again, later in the log
    different = images_changed(BEFORE, state(), position=7, at=T0)
    assert different is not None
    assert different.message_id != message_id(7)  # another change at the same position
    assert (message_id(7) or "").startswith("images.changed:")


def test_the_message_round_trips_through_the_converter() -> None:
    message = changed(BEFORE, state())
    assert decode_outbound_message(message.ROUTING_KEY, encode_message(message)) == message


def test_the_state_shows_gated_entries_only_while_every_eligible_node_holds_them() -> None:
    offer = Offer(
        "reg.test",
        "lab",
        (
            MenuEntry("radio", "recommended", "sha256:r"),
            MenuEntry("radio", "w_2077_44", "sha256:w", requires_prepulled=True),
            MenuEntry("radio", "w_2077_43", None, requires_prepulled=True),
            MenuEntry("dropdown", "w_2077_42", "sha256:o"),
        ),
        (TaggedImage("w_2077_44", "sha256:w"),),
    )
    assert offer.gated_digests() == frozenset({"sha256:w"})
    pending = images_state(offer, Gating(2, {"sha256:w": 1}))
    held = images_state(offer, Gating(2, {"sha256:w": 2}), dropdown=False)
    nobody = images_state(offer, Gating(0, {}))
    assert [i.tag for i in pending.menu] == ["recommended"]
    assert [i.tag for i in pending.dropdown] == ["w_2077_42"]
    assert [i.tag for i in held.menu] == ["recommended", "w_2077_44"]
    assert held.dropdown == ()
    assert [i.tag for i in nobody.menu] == ["recommended", "w_2077_44"]  # none eligible
    assert pending.recommended == TaggedImage("recommended", "sha256:r")
    assert pending.prepull == (TaggedImage("w_2077_44", "sha256:w"),)
