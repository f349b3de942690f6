//! `emulator google`: serves a fake directory API until interrupted.

use anyhow::{Context, Result};

use super::args::{EmulatorCommand, EmulatorFaultArgs};
use super::Exit;
use crate::emulator::google::{EmulatorOptions, FaultPlan, GoogleEmulator};
use crate::emulator::hail::HailEmulator;

/// Runs one emulator in the foreground: prints `listening on <base URL>` and serves until the
/// process is killed (Ctrl-C).
pub fn run(command: &EmulatorCommand) -> Result<Exit> {
    match command {
        EmulatorCommand::Google { port, customer, faults } => {
            let options = EmulatorOptions { port: *port, customer: customer.clone(), ..EmulatorOptions::default() };
            let emulator =
                GoogleEmulator::start(options).with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
            emulator.set_faults(fault_plan(faults));
            serve(&emulator.base_url())
        }
        EmulatorCommand::Hail { port, token } => {
            let emulator =
                HailEmulator::start(*port, token).with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
            serve(&emulator.base_url())
        }
    }
}

/// Says where the emulator listens, then keeps the process alive: the server runs on its own
/// thread.
fn serve(base_url: &str) -> ! {
    println!("listening on {base_url}");
    loop {
        std::thread::park();
    }
}

fn fault_plan(args: &EmulatorFaultArgs) -> FaultPlan {
    FaultPlan {
        group_listing_lag: args.group_listing_lag,
        group_read_lag: args.group_read_lag,
        membership_listing_lag: args.membership_listing_lag,
        reject_groups: args.reject_groups.iter().cloned().collect(),
        reject_members: args.reject_members.iter().cloned().collect(),
        ..FaultPlan::default()
    }
}
