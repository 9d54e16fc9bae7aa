//! Writing to the terminal: data to stdout, messages to stderr, colour only on a terminal,
//! a closed pipe is not an error.

use std::io::{IsTerminal, Write};

/// Writes `s` to stdout. A closed pipe (`| head`) ends output quietly.
pub fn print(s: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.flush()?;
    Ok(())
}

pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Whether to colour output written to `stream` under `--color`.
pub fn use_color(choice: crate::cli::Color, stdout: bool) -> bool {
    match choice {
        crate::cli::Color::Always => true,
        crate::cli::Color::Never => false,
        crate::cli::Color::Auto => {
            std::env::var_os("NO_COLOR").is_none()
                && if stdout {
                    std::io::stdout().is_terminal()
                } else {
                    std::io::stderr().is_terminal()
                }
        }
    }
}
