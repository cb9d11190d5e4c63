//! The `kaprobe` binary: parse arguments, run the command, map the outcome to
//! an exit status (0 done, 2 error). A closed stdout pipe is not an error.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use kaprobe::cli::{Cli, Command};
use kaprobe::{analyze, report, sniff};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let is_terminal = stdout.is_terminal();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = match &cli.command {
        Command::Analyze(args) => {
            report::set_color(args.output.color, is_terminal);
            analyze::run(args, &mut out)
        }
        Command::Sniff(args) => {
            report::set_color(args.output.color, is_terminal);
            sniff::run(args, &mut out)
        }
    };
    let result = result.and_then(|end| out.flush().map(|()| end));
    match result {
        Ok(end) if end.errors.is_empty() => ExitCode::SUCCESS,
        Ok(end) => {
            for e in &end.errors {
                eprintln!("kaprobe: {e}");
            }
            ExitCode::from(2)
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kaprobe: cannot write output: {e}");
            ExitCode::from(2)
        }
    }
}
