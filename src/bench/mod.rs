//! `payments-gateway bench`: starts what it measures (a private redis-server, the sandbox,
//! replicas of the service, a bare baseline), measures every performance figure of issue 9
//! over loopback sockets in one run, prints each next to its target and writes the table to
//! bench/results/. Every wait is bounded; every child is killed on the way out.

pub mod bare;
mod bare_create;
mod calls;
mod commandstats;
mod create;
mod load;
mod otlp;
mod procs;
mod report;
mod streams;
mod sys;
mod unary;
mod watch;

use report::{Header, Report};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Where the results file goes.
    #[arg(long, default_value = "bench/results")]
    pub out_dir: PathBuf,
    /// A few words for the results file's name (`<date>-<description>.md`).
    #[arg(long, default_value = "bench")]
    pub description: String,
    /// Only these groups, comma-separated: get (a, b, g), create (c), streams (d), watch (e, f).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Keep the temp directory with the children's logs.
    #[arg(long)]
    pub keep_logs: bool,
}

type Group = (&'static str, &'static [(&'static str, &'static str)]);

const GROUPS: &[Group] = &[
    ("get", unary::FIGURES),
    ("create", create::FIGURES),
    ("streams", streams::FIGURES),
    ("watch", watch::FIGURES),
];

/// Runs the bench; Ctrl-C or SIGTERM stop it (and its children) at once.
pub async fn run(args: BenchArgs) -> Result<PathBuf, String> {
    crate::startup::install_crypto_provider();
    tokio::select! {
        result = run_all(&args) => result,
        () = interrupted() => Err("interrupted; every child was stopped".into()),
    }
}

async fn interrupted() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

async fn run_all(args: &BenchArgs) -> Result<PathBuf, String> {
    let began = Instant::now();
    let now = chrono::Local::now();
    let ticks = sys::ClockTicks::read();
    // Taken at the start: the binary was built from this tree.
    let commit = sys::git_commit(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
    let load_before = sys::load_average();
    let mut dir = procs::RunDir::new()?;
    dir.keep = args.keep_logs;
    println!("payments-gateway bench: logs in {}", dir.path.display());
    if !ticks.measured {
        println!("  getconf CLK_TCK did not answer: assuming 100 clock ticks per second");
    }
    let mut report = Report::default();
    for (name, figures) in GROUPS {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
            continue;
        }
        println!("[{:>5.1} s] {name} …", began.elapsed().as_secs_f64());
        let outcome = match *name {
            "get" => unary::run(&dir, &mut report).await,
            "create" => create::run(&dir, ticks, &mut report).await,
            "streams" => streams::run(&dir, &mut report).await,
            "watch" => watch::run(&dir, &mut report).await,
            _ => unreachable!("a known group"),
        };
        if let Err(e) = outcome {
            eprintln!("  {name}: {e}");
            dir.keep = true;
            let first_line = e.lines().next().unwrap_or_default().to_owned();
            let measured: Vec<&str> = report.rows.iter().map(|r| r.name.as_str()).collect();
            let missing: Vec<(&str, &str)> = figures
                .iter()
                .filter(|(n, _)| !measured.contains(n))
                .copied()
                .collect();
            report.not_measured(&missing, &first_line);
        }
    }
    let header = Header {
        date: now.format("%Y-%m-%d").to_string(),
        started: now.format("%Y-%m-%d %H:%M:%S %z").to_string(),
        command: "cargo run --release -- bench".into(),
        commit,
        machine: {
            let mut machine = sys::machine_description(ticks);
            machine.push(format!(
                "load average (1, 5, 15 min) before the run: {load_before}; after: {}",
                sys::load_average()
            ));
            machine
        },
        took_seconds: began.elapsed().as_secs_f64(),
    };
    println!("\n{}", report.table());
    let path = report::write(
        &args.out_dir,
        &header.date,
        &now.format("%H%M%S").to_string(),
        &args.description,
        &report.markdown(&header),
    )?;
    println!(
        "written to {} (took {:.0} s)",
        path.display(),
        header.took_seconds
    );
    if dir.keep {
        println!("logs kept in {}", dir.path.display());
    }
    Ok(path)
}
