//! `strait init`: traffic capture for a pod's sidecar (the work is in
//! `strait_net::capture`; this reads the arguments and reports).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use strait_net::capture::{self, Flags, annotations};

use crate::cli::InitArgs;

pub fn run(args: &InitArgs) -> anyhow::Result<ExitCode> {
    let pod = pod_annotations(args)?;
    if args.clean {
        return clean(args.dry_run);
    }
    let flags = Flags {
        proxy_uid: args.proxy_uid,
        proxy_gid: args.proxy_gid,
        inbound_ports: args.inbound_ports.clone(),
        exclude_inbound_ports: args.exclude_inbound_ports.clone(),
        include_outbound_ip_ranges: args.include_outbound_ip_ranges.clone(),
        exclude_outbound_ip_ranges: args.exclude_outbound_ip_ranges.clone(),
        include_outbound_ports: args.include_outbound_ports.clone(),
        exclude_outbound_ports: args.exclude_outbound_ports.clone(),
    };
    let (settings, mode) = capture::resolve(&pod, &flags)?;
    if mode == annotations::Capture::None {
        eprintln!(
            "{}: NONE: this pod's traffic is not captured; nothing installed",
            annotations::INTERCEPTION_MODE
        );
        return Ok(ExitCode::SUCCESS);
    }
    if args.dry_run {
        print!("{}", capture::rules::install(&settings));
        return Ok(ExitCode::SUCCESS);
    }
    if let Err(e) = capture::apply(&settings) {
        eprintln!("error: {e}");
        return Ok(ExitCode::FAILURE);
    }
    eprintln!(
        "capture installed: outbound TCP to {}, inbound to {}, except UID {} / GID {}",
        settings.outbound_port, settings.inbound_port, settings.proxy_uid, settings.proxy_gid
    );
    Ok(ExitCode::SUCCESS)
}

fn pod_annotations(args: &InitArgs) -> anyhow::Result<BTreeMap<String, String>> {
    if let Some(path) = &args.annotations_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading annotations file {}", path.display()))?;
        return Ok(annotations::parse_downward(
            &path.display().to_string(),
            &text,
        )?);
    }
    match &args.annotations {
        Some(pairs) => Ok(annotations::parse_pairs(pairs)?),
        None => Ok(BTreeMap::new()),
    }
}

fn clean(dry_run: bool) -> anyhow::Result<ExitCode> {
    let result = if dry_run {
        capture::saved_removal().map(|script| {
            print!("{}", script.unwrap_or_default());
        })
    } else {
        capture::clean().map(|removed| {
            if removed {
                eprintln!("capture removed");
            } else {
                eprintln!("no capture rules installed; nothing to remove");
            }
        })
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
