//! The `kaprobe` binary: parse arguments, run the command, map the outcome to
//! an exit status. A closed stdout pipe is not an error.
//!
//! analyze and sniff: 0 done, 2 error. poke, like ping: 0 every poked
//! connection alive, 1 at least one not, 2 nothing could be poked.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use kaprobe::analyze::RunEnd;
use kaprobe::cli::{Cli, Command, PokeArgs};
use kaprobe::{analyze, capture, docs, poke, report, signals, sniff};

fn main() -> ExitCode {
    // Not a command of the interface: the helper process that `poke` starts
    // to close its capture socket (capture::PacketSocket::close_detached).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == capture::RELEASE_COMMAND)
    {
        capture::release_inherited();
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse();
    let stdout = io::stdout();
    let is_terminal = stdout.is_terminal();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    match &cli.command {
        Command::Analyze(args) => {
            report::set_color(args.output.color, is_terminal);
            report_end(analyze::run(args, &signals::stop_flag(), &mut out), out)
        }
        Command::Sniff(args) if args.packets_to_stdout() => {
            report::set_color(args.output.color, args.events_on_terminal());
            let mut out = io::BufWriter::with_capacity(1 << 16, io::stderr().lock());
            report_end(sniff::run(args, &signals::stop_flag(), &mut out), out)
        }
        Command::Sniff(args) => {
            report::set_color(args.output.color, is_terminal);
            report_end(sniff::run(args, &signals::stop_flag(), &mut out), out)
        }
        Command::Poke(args) => {
            report::set_color(args.color, is_terminal);
            poke_end(args, &mut out)
        }
        Command::Completions { shell } => generated(docs::completions(*shell, &mut out), out),
        Command::Man { command } => generated(docs::man(command.as_deref(), &mut out), out),
    }
}

fn generated(result: io::Result<()>, out: impl Write) -> ExitCode {
    report_end(result.map(|()| RunEnd { errors: Vec::new() }), out)
}

fn report_end(result: io::Result<RunEnd>, mut out: impl Write) -> ExitCode {
    match result.and_then(|end| out.flush().map(|()| end)) {
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

fn poke_end(args: &PokeArgs, out: &mut dyn Write) -> ExitCode {
    match poke::run(args, out) {
        Ok(end) => ExitCode::from(end.status()),
        Err(poke::PokeError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kaprobe: {e}");
            ExitCode::from(2)
        }
    }
}
