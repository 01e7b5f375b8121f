//! `sst-dump`: inspect Lightning DB SST files, manifests and WALs offline.
//! See docs/sst-dump.md, or run `sst-dump --help`.

use clap::Parser;

fn main() {
    lightning_tools::init_tracing();
    let args = lightning_tools::cli::Args::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let code = lightning_tools::run(&args, &mut out);
    drop(out);
    std::process::exit(code);
}
