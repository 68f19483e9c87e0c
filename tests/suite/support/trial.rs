//! The suite's tests as data: a [`Test`] is a name, a body, what it
//! [needs](Need), and whether it must run alone. `main` turns each into a
//! `libtest_mimic::Trial`, which prints and counts like `cargo test`'s own
//! harness (`test result: ok. N passed; 0 failed; M ignored`).
//!
//! Why not `#[test]`: libtest decides "ignored" when it compiles, but
//! whether MariaDB answers is known only when the tests run. A trial checks
//! its needs first and reports itself ignored, with the reason, when one is
//! missing (failed, under CI); see [`require`](super::require).
//!
//! Tests run in parallel (as many as `--test-threads`, by default one per
//! core) except the [alone](Test::alone) ones: those load a small machine on
//! their own (a thousand users, ten thousand connections, a login storm) and
//! would make timing-sensitive neighbours flaky, so they take a lock that
//! every other test holds shared.

use libtest_mimic::{Completion, Failed, Trial};
use parking_lot::RwLock;

use super::db::TestDb;
use super::require::{self, Need};

/// Held shared by every test, exclusively by the ones that run alone.
static TURN: RwLock<()> = RwLock::new(());

/// One test of the suite.
pub struct Test {
    /// `area::function` (and `::sqlite` / `::mysql`): what filters match.
    name: String,
    /// Checked before the body runs; shown as the trial's kind.
    needs: Vec<Need>,
    /// Takes [`TURN`] exclusively instead of shared.
    alone: bool,
    /// The test itself: it fails by panicking, as a `#[test]` does.
    body: Box<dyn FnOnce() + Send>,
}

/// `tests![f, g]`: one [`Test`] per function `fn()`, named `module::f`.
macro_rules! tests {
    ($($f:ident),* $(,)?) => {
        vec![$($crate::support::Test::new(
            $crate::support::trial::short(concat!(module_path!(), "::", stringify!($f))),
            $f,
        )),*]
    };
}

/// `both_stores![f, g]`: each scenario `fn(TestDb)` as two tests,
/// `module::f::sqlite` and `module::f::mysql` (which needs MySQL).
macro_rules! both_stores {
    ($($f:ident),* $(,)?) => {{
        let mut tests = Vec::new();
        $(tests.extend($crate::support::trial::on_both_stores(
            $crate::support::trial::short(concat!(module_path!(), "::", stringify!($f))),
            $f,
        ));)*
        tests
    }};
}

impl Test {
    /// A test named `name` that runs `body`; it passes unless `body` panics.
    pub fn new(name: impl Into<String>, body: impl FnOnce() + Send + 'static) -> Test {
        Test {
            name: name.into(),
            needs: Vec::new(),
            alone: false,
            body: Box::new(body),
        }
    }

    /// Adds what the test needs (it is ignored, or fails under CI, without).
    pub fn needs(mut self, needs: &[Need]) -> Test {
        self.needs.extend_from_slice(needs);
        self
    }

    /// Runs the test while no other test runs.
    pub fn alone(mut self) -> Test {
        self.alone = true;
        self
    }

    /// What the test needs.
    pub fn needs_of(&self) -> &[Need] {
        &self.needs
    }

    /// The trial that `libtest_mimic::run` runs: the needs are checked first,
    /// then the body runs holding its turn. Its kind (shown as `[mysql]`
    /// before the name, and matched by filters) lists the needs.
    pub fn into_trial(self) -> Trial {
        let Test {
            name,
            needs,
            alone,
            body,
        } = self;
        let kind: Vec<&str> = needs.iter().map(|n| n.name()).collect();
        Trial::ignorable_test(name, move || {
            if let Some(why) = require::first_missing(&needs) {
                return if require::under_ci() {
                    Err(Failed::from(format!("CI runs every test: {why}")))
                } else {
                    Ok(Completion::ignored_with(why))
                };
            }
            // A panic in `body` unwinds through the guard, which releases
            // the lock (parking_lot's locks are not poisoned).
            if alone {
                let _turn = TURN.write();
                body();
            } else {
                let _turn = TURN.read();
                body();
            }
            Ok(Completion::Completed)
        })
        .with_kind(kind.join(","))
    }
}

/// `suite::chat::one_to_one` → `chat::one_to_one`.
pub fn short(path: &str) -> String {
    path.split_once("::")
        .map_or(path, |(_, rest)| rest)
        .to_owned()
}

/// The two tests of a scenario: on a new SQLite file, and on a new MySQL
/// database.
pub fn on_both_stores(name: String, scenario: fn(TestDb)) -> [Test; 2] {
    [
        Test::new(
            format!("{name}::sqlite"),
            move || scenario(TestDb::sqlite()),
        ),
        Test::new(format!("{name}::mysql"), move || scenario(TestDb::mysql()))
            .needs(&[Need::Mysql]),
    ]
}
