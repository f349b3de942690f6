//! `emulator google|azure|hail|metamist`: serves a fake API until interrupted.

use anyhow::{Context, Result};

use super::args::{EmulatorCommand, EmulatorFaultArgs};
use super::Exit;
use crate::emulator::azure::{AzureEmulator, AzureEmulatorOptions, SeedServicePrincipal, SeedUser};
use crate::emulator::google::{EmulatorOptions, GoogleEmulator};
use crate::emulator::hail::HailEmulator;
use crate::emulator::metamist::MetamistEmulator;
use crate::emulator::FaultPlan;

/// Runs one emulator in the foreground: prints `listening on <base URL>` and serves until the
/// process is killed (Ctrl-C).
pub fn run(command: &EmulatorCommand) -> Result<Exit> {
    match command {
        EmulatorCommand::Google { port, customer, premium, faults } => {
            let options = EmulatorOptions {
                port: *port,
                customer: customer.clone(),
                premium: *premium,
                ..EmulatorOptions::default()
            };
            let emulator =
                GoogleEmulator::start(options).with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
            emulator.set_faults(fault_plan(faults));
            println!("listening on {}", emulator.base_url());
            serve_forever()
        }
        EmulatorCommand::Azure { port, users, identities, faults } => {
            let options = AzureEmulatorOptions { port: *port, ..AzureEmulatorOptions::default() };
            let emulator =
                AzureEmulator::start(options).with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
            for upn in users {
                let display_name = upn.split('@').next().unwrap_or(upn).to_owned();
                emulator.insert_user(SeedUser {
                    user_principal_name: upn.clone(),
                    mail: Some(upn.clone()),
                    display_name,
                });
            }
            for arm_id in identities {
                let display_name = arm_id.trim_end_matches('/').rsplit('/').next().unwrap_or(arm_id).to_owned();
                emulator.insert_service_principal(SeedServicePrincipal {
                    display_name,
                    alternative_names: vec!["isExplicit=True".to_owned(), arm_id.clone()],
                });
            }
            emulator.set_faults(fault_plan(faults));
            println!("listening on {}", emulator.base_url());
            serve_forever()
        }
        EmulatorCommand::Hail { port, token } => {
            let emulator =
                HailEmulator::start(*port, token).with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
            println!("listening on {}", emulator.base_url());
            serve_forever()
        }
        EmulatorCommand::Metamist { port, token } => {
            let emulator =
                MetamistEmulator::start(*port, token).with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
            println!("listening on {}", emulator.base_url());
            serve_forever()
        }
    }
}

/// The server runs on its own thread; this one only keeps the process alive.
fn serve_forever() -> ! {
    loop {
        std::thread::park();
    }
}

fn fault_plan(args: &EmulatorFaultArgs) -> FaultPlan {
    FaultPlan {
        group_listing_lag: args.group_listing_lag,
        group_read_lag: args.group_read_lag,
        membership_listing_lag: args.membership_listing_lag,
        delta_lag: args.delta_lag,
        reject_groups: args.reject_groups.iter().cloned().collect(),
        reject_members: args.reject_members.iter().cloned().collect(),
        ..FaultPlan::default()
    }
}
