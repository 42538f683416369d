// SPDX-License-Identifier: GPL-2.0

//! Self-tests of the replay window (upstream `selftest/counter.c`):
//! upstream's cases one by one, then random sequences checked against a
//! naive model (every counter seen, in a bitmap) near zero, at a random
//! offset and just below `REJECT_AFTER_MESSAGES`.

use crate::kapi::random;
use crate::messages::{COUNTER_WINDOW_SIZE, REJECT_AFTER_MESSAGES};
use crate::noise::ReplayCounter;
use kernel::prelude::*;

/// Numbered checks on one counter, as upstream's `T()`.
struct Checks {
    counter: KBox<ReplayCounter>,
    test: u32,
    success: bool,
}

impl Checks {
    fn init(&mut self) {
        *self.counter = ReplayCounter::new();
    }

    fn t(&mut self, n: u64, expected: bool) {
        self.test += 1;
        if self.counter.validate(n) != expected {
            pr_err!("nonce counter self-test {}: FAIL\n", self.test);
            self.success = false;
        }
    }
}

/// Upstream's cases, numbered as there.
fn fixed() -> Result<bool> {
    let mut c = Checks { counter: KBox::new(ReplayCounter::new(), GFP_KERNEL)?, test: 0, success: true };
    const LIM: u64 = COUNTER_WINDOW_SIZE + 1;
    const R: u64 = REJECT_AFTER_MESSAGES;
    for (n, v) in [
        (0, true),
        (1, true),
        (1, false),
        (9, true),
        (8, true),
        (7, true),
        (7, false),
        (LIM, true),
        (LIM - 1, true),
        (LIM - 1, false),
        (LIM - 2, true),
        (2, true),
        (2, false),
        (LIM + 16, true),
        (3, false),
        (LIM + 16, false),
        (LIM * 4, true),
        (LIM * 4 - (LIM - 1), true),
        (10, false),
        (LIM * 4 - LIM, false),
        (LIM * 4 - (LIM + 1), false),
        (LIM * 4 - (LIM - 2), true),
        (LIM * 4 + 1 - LIM, false),
        (0, false),
        (R, false),
        (R - 1, true),
        (R, false),
        (R - 1, false),
        (R - 2, true),
        (R + 1, false),
        (R + 2, false),
        (R - 2, false),
        (R - 3, true),
        (0, false),
    ] {
        c.t(n, v);
    }

    c.init();
    for i in 1..=COUNTER_WINDOW_SIZE {
        c.t(i, true);
    }
    c.t(0, true);
    c.t(0, false);

    c.init();
    for i in 2..=COUNTER_WINDOW_SIZE + 1 {
        c.t(i, true);
    }
    c.t(1, true);
    c.t(0, false);

    c.init();
    for i in (0..=COUNTER_WINDOW_SIZE).rev() {
        c.t(i, true);
    }

    c.init();
    for i in (1..=COUNTER_WINDOW_SIZE + 1).rev() {
        c.t(i, true);
    }
    c.t(0, false);

    c.init();
    for i in (1..=COUNTER_WINDOW_SIZE).rev() {
        c.t(i, true);
    }
    c.t(COUNTER_WINDOW_SIZE + 1, true);
    c.t(0, false);

    c.init();
    for i in (1..=COUNTER_WINDOW_SIZE).rev() {
        c.t(i, true);
    }
    c.t(0, true);
    c.t(COUNTER_WINDOW_SIZE + 1, true);

    Ok(c.success)
}

/// The span of counters a random run uses, above its offset.
const SPAN: u64 = 8 * COUNTER_WINDOW_SIZE;
const OPERATIONS: u32 = 60_000;

/// The rule the window implements, without its cleverness: a counter is
/// accepted once, if it is below `REJECT_AFTER_MESSAGES` and no more than
/// `COUNTER_WINDOW_SIZE` below the largest accepted so far.
struct Model {
    offset: u64,
    seen: KVec<u64>,
    max: Option<u64>,
}

impl Model {
    fn validate(&mut self, n: u64) -> bool {
        if n >= REJECT_AFTER_MESSAGES || self.max.is_some_and(|max| n + COUNTER_WINDOW_SIZE < max) {
            return false;
        }
        let k = n - self.offset;
        let Some(word) = self.seen.get_mut((k / 64) as usize) else {
            return false;
        };
        let bit = 1u64 << (k % 64);
        if *word & bit != 0 {
            return false;
        }
        *word |= bit;
        self.max = Some(self.max.map_or(n, |max| max.max(n)));
        true
    }
}

/// Random counters around a moving point (mostly forward, some far back,
/// some repeated, some jumps), checked against the model.
fn randomized(offset: u64) -> Result<bool> {
    let mut counter = KBox::new(ReplayCounter::new(), GFP_KERNEL)?;
    let mut seen = KVec::with_capacity((SPAN / 64 + 1) as usize, GFP_KERNEL)?;
    for _ in 0..SPAN / 64 + 1 {
        seen.push(0u64, GFP_KERNEL)?;
    }
    let mut model = Model { offset, seen, max: None };
    let mut point = 0u64;
    for i in 0..OPERATIONS {
        let k = match random::below(16) {
            // Far behind, around the window's edge.
            0 => point.saturating_sub(COUNTER_WINDOW_SIZE - 64 + u64::from(random::below(128))),
            // A jump ahead.
            1 => point + u64::from(random::below(3 * 64)),
            // Reordering, a little behind or ahead.
            2..=5 => (point + u64::from(random::below(64))).saturating_sub(32),
            // In order.
            _ => {
                point += 1;
                point
            }
        }
        .min(SPAN - 1);
        point = point.min(SPAN - 1 - 3 * 64);
        let n = offset + k;
        let (got, expected) = (counter.validate(n), model.validate(n));
        if got != expected {
            pr_err!(
                "nonce counter random self-test (offset {}): FAIL at operation {}: {} gave {}, expected {}\n",
                offset,
                i,
                n,
                got,
                expected
            );
            return Ok(false);
        }
    }
    Ok(true)
}

pub(crate) fn selftest() -> bool {
    let mut offset = [0u8; 6];
    random::fill(&mut offset);
    let mut random_offset = 0u64;
    for b in offset {
        random_offset = random_offset << 8 | u64::from(b);
    }
    let result = fixed().and_then(|ok| {
        let mut ok = ok;
        for offset in [0, random_offset, REJECT_AFTER_MESSAGES + 1000 - SPAN] {
            ok &= randomized(offset)?;
        }
        Ok(ok)
    });
    match result {
        Ok(true) => {
            pr_info!("nonce counter self-tests: pass\n");
            true
        }
        Ok(false) => false,
        Err(_) => {
            pr_err!("nonce counter self-test malloc: FAIL\n");
            false
        }
    }
}
