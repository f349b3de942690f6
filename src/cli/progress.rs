//! A progress bar for long applies, drawn only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::sync::{NoProgress, Progress};

/// A bar on stderr, or nothing when stderr is not a terminal (CI logs, pipes).
pub fn for_terminal() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar(ProgressBar::hidden()))
    } else {
        Box::new(NoProgress)
    }
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, total: usize) {
        self.0.set_length(total as u64);
        self.0.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} changes  {elapsed} (eta {eta})") {
            self.0.set_style(style);
        }
    }

    fn advance(&self) {
        self.0.inc(1);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
