//! Tests of [`LogBook`](super::LogBook): duplicates, holes, bases, bounds.

use super::{LogBook, MAX_ABOVE};

fn book() -> LogBook {
    let mut b = LogBook::default();
    b.logged_in(5);
    b
}

#[test]
fn a_message_is_new_once() {
    let mut b = book();
    assert!(b.note("d5-6", 1));
    assert!(
        !b.note("d5-6", 1),
        "the same (conv, seq) again is a duplicate"
    );
    assert!(b.note("d5-7", 1), "another conversation has its own seqs");
    assert!(b.has("d5-6", 1));
    assert!(!b.has("d5-6", 2));
}

#[test]
fn a_hole_is_filled_late_and_the_base_follows() {
    let mut b = book();
    assert!(b.note("g3", 1));
    assert!(b.note("g3", 3), "3 before 2: shown, 2 still awaited");
    assert_eq!(
        b.behind(),
        vec![("g3".to_owned(), 1)],
        "sync after 1 fills the hole"
    );
    assert!(b.note("g3", 2), "the late 2 is new, not a duplicate");
    assert!(!b.note("g3", 3));
    assert!(b.behind().is_empty());
}

#[test]
fn the_first_convs_sets_the_floors_later_ones_do_not() {
    let mut b = book();
    b.convs([("d5-6", 17), ("g3", 40)]);
    assert!(
        b.behind().is_empty(),
        "a fresh session starts where the log is"
    );
    assert!(b.note("d5-6", 17), "pushed late, but never shown: new");
    assert!(!b.note("d5-6", 17));
    assert!(!b.has("d5-6", 3), "below the floor nothing was shown yet");
    assert!(b.note("d5-6", 18));
    assert!(
        b.has("d5-6", 3),
        "past the floor every earlier push has come: the base is the floor"
    );
    // A reconnect: the second CONVS shows what happened meanwhile.
    b.convs([("d5-6", 20), ("g3", 40), ("d5-9", 2)]);
    assert_eq!(
        b.behind(),
        vec![("d5-6".to_owned(), 18), ("d5-9".to_owned(), 0)],
        "a conversation begun while away is new from its start"
    );
    b.caught_up("d5-6", 20);
    b.caught_up("d5-9", 2);
    assert!(b.behind().is_empty());
    assert!(!b.note("d5-9", 1));
}

#[test]
fn caught_up_jumps_over_holes_that_will_never_fill() {
    let mut b = book();
    b.convs([("g3", 0)]);
    b.note("g3", 5);
    b.convs([("g3", 9)]);
    assert_eq!(b.behind(), vec![("g3".to_owned(), 0)]);
    b.caught_up("g3", 8); // 1..4 pruned; the page's last was 8, CONVS said 9
    assert!(b.behind().is_empty());
    assert!(
        !b.note("g3", 9),
        "CONVS said 9 exists and the sync returned all there was"
    );
}

#[test]
fn another_account_starts_a_new_book() {
    let mut b = book();
    b.note("d5-6", 1);
    b.logged_in(5);
    assert!(b.has("d5-6", 1), "the same account keeps its book");
    b.logged_in(6);
    assert!(!b.has("d5-6", 1));
}

#[test]
fn the_set_above_the_base_is_bounded() {
    let mut b = book();
    let n = MAX_ABOVE as u64 + 10;
    for seq in 2..=n + 1 {
        assert!(b.note("g1", seq));
    }
    // 1 never came: the base jumped over it rather than grow without end.
    assert!(b.has("g1", 1));
    assert!(b.behind().is_empty());
}

#[test]
fn a_catch_up_from_the_floor_moves_the_floor() {
    let mut b = book();
    b.convs([("g3", 10)]);
    b.convs([("g3", 15)]);
    assert_eq!(b.behind(), vec![("g3".to_owned(), 10)]);
    for seq in 11..=15 {
        assert!(b.note("g3", seq));
    }
    b.caught_up("g3", 15);
    assert!(b.behind().is_empty());
    assert!(b.has("g3", 10), "past the floor: the base followed");
    b.convs([("g3", 16)]);
    assert_eq!(b.behind(), vec![("g3".to_owned(), 15)]);
}
