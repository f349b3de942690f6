//! Progress of a sync's long steps (reading members, applying changes, writing lists), always
//! on stderr, never stdout (which may hold a JSON plan): a bar with an estimate of the time
//! left when stderr is a terminal, else one plain line every `PLAIN_LINE_EVERY`
//! (`applied 1,200 of 10,000 changes, about 2 min left`), so CI logs show it too. A step that
//! ends sooner prints nothing.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::sync::Progress;

/// How often the plain line is printed. Long enough that a step of a few seconds, every step
/// of the tests included, prints none.
pub const PLAIN_LINE_EVERY: Duration = Duration::from_secs(10);

/// Progress of one step on stderr, worded `{verb} {done} of {total} {noun}` (e.g. `applied`,
/// `changes`).
pub fn on_stderr(verb: &'static str, noun: &'static str) -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar { bar: ProgressBar::hidden(), verb, noun })
    } else {
        Box::new(Lines { verb, noun, every: PLAIN_LINE_EVERY, state: Mutex::new(None) })
    }
}

/// A bar, for a terminal.
struct Bar {
    bar: ProgressBar,
    verb: &'static str,
    noun: &'static str,
}

impl Progress for Bar {
    fn start(&self, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        let template =
            format!("{{bar:40}} {} {{pos}}/{{len}} {}  {{elapsed}} (about {{eta}} left)", self.verb, self.noun);
        if let Ok(style) = ProgressStyle::with_template(&template) {
            self.bar.set_style(style);
        }
    }

    fn advance(&self) {
        self.bar.inc(1);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A plain line now and then, for logs.
struct Lines {
    verb: &'static str,
    noun: &'static str,
    every: Duration,
    /// Set by `start`.
    state: Mutex<Option<LinesState>>,
}

struct LinesState {
    total: usize,
    done: usize,
    started: Instant,
    /// When the last line was printed (the start before the first).
    last: Instant,
}

impl Lines {
    /// Counts one more done at `now`, and returns the line to print if one is due.
    fn advance_at(&self, now: Instant) -> Option<String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = state.as_mut()?;
        state.done += 1;
        if now.duration_since(state.last) < self.every || state.done >= state.total {
            return None;
        }
        state.last = now;
        Some(line(self.verb, self.noun, state.done, state.total, now.duration_since(state.started)))
    }
}

impl Progress for Lines {
    fn start(&self, total: usize) {
        let now = Instant::now();
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(LinesState { total, done: 0, started: now, last: now });
    }

    fn advance(&self) {
        if let Some(line) = self.advance_at(Instant::now()) {
            eprintln!("{line}");
        }
    }
}

/// `applied 1,200 of 10,000 changes, about 2 min left`: the time left as the time so far per
/// item done, times the items left.
fn line(verb: &str, noun: &str, done: usize, total: usize, elapsed: Duration) -> String {
    let head = format!("{verb} {} of {} {noun}", thousands(done), thousands(total));
    if done == 0 {
        return head;
    }
    let left = elapsed.mul_f64(total.saturating_sub(done) as f64 / done as f64);
    format!("{head}, about {} left", rough_duration(left))
}

/// `12 s`, `2 min`, `1 h 5 min`.
fn rough_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64().round() as u64;
    match seconds {
        0..60 => format!("{} s", seconds.max(1)),
        60..3600 => format!("{} min", (seconds + 30) / 60),
        _ => {
            let minutes = (seconds + 30) / 60;
            match minutes % 60 {
                0 => format!("{} h", minutes / 60),
                rest => format!("{} h {rest} min", minutes / 60),
            }
        }
    }
}

/// `10000` → `10,000`.
fn thousands(count: usize) -> String {
    let digits = count.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_how_far_and_about_how_long_is_left() {
        let minute = Duration::from_secs(60);
        assert_eq!(
            line("applied", "changes", 1_200, 10_000, minute / 4),
            "applied 1,200 of 10,000 changes, about 2 min left"
        );
        assert_eq!(line("read", "groups", 0, 999, minute), "read 0 of 999 groups");
        assert_eq!(
            line("read", "groups", 500, 1_000, Duration::from_secs(7)),
            "read 500 of 1,000 groups, about 7 s left"
        );
        assert_eq!(rough_duration(Duration::from_millis(200)), "1 s");
        assert_eq!(rough_duration(minute * 65), "1 h 5 min");
        assert_eq!(rough_duration(minute * 120), "2 h");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn a_line_is_printed_once_per_interval_and_never_for_the_last_item() {
        let lines = Lines { verb: "applied", noun: "changes", every: Duration::from_secs(10), state: Mutex::new(None) };
        assert_eq!(lines.advance_at(Instant::now()), None, "nothing before start");
        lines.start(4);
        let started = lines.state.lock().unwrap().as_ref().unwrap().started;
        let at = |seconds: u64| lines.advance_at(started + Duration::from_secs(seconds));
        assert_eq!(at(3), None);
        assert_eq!(at(10).as_deref(), Some("applied 2 of 4 changes, about 10 s left"));
        assert_eq!(at(15), None, "the next one is due 10 s after the last");
        assert_eq!(at(40), None, "the summary follows the last item");
    }
}
