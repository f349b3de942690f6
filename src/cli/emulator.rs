//! `emulator google`: serves a fake directory API until interrupted.

use anyhow::{Context, Result};

use super::args::EmulatorCommand;
use super::Exit;
use crate::emulator::google::{EmulatorOptions, GoogleEmulator};

/// Runs one emulator in the foreground: prints `listening on <base URL>` and serves until the
/// process is killed (Ctrl-C).
pub fn run(command: &EmulatorCommand) -> Result<Exit> {
    match command {
        EmulatorCommand::Google { port, customer } => {
            let options = EmulatorOptions { port: *port, customer: customer.clone(), ..EmulatorOptions::default() };
            let emulator =
                GoogleEmulator::start(options).with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
            println!("listening on {}", emulator.base_url());
            // The server runs on its own thread; this one only keeps the process alive.
            loop {
                std::thread::park();
            }
        }
    }
}
