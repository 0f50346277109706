//! docs/cli.md documents every subcommand and every flag that `--help` shows.

use clap::CommandFactory;
use electra_convert_cli::cli::Cli;

#[test]
fn cli_md_documents_every_subcommand_and_flag() {
    let doc = std::fs::read_to_string(crate::repo_root().join("docs/cli.md")).unwrap();
    let headings: Vec<&str> = doc.lines().filter(|l| l.starts_with("## ")).collect();
    let mut missing = Vec::new();
    for sub in Cli::command().get_subcommands() {
        let name = sub.get_name();
        if !headings.iter().any(|h| h.contains(name)) {
            missing.push(format!("section `## {name}`"));
        }
        for arg in sub.get_arguments() {
            if let Some(long) = arg.get_long() {
                if long != "help" && !doc.contains(&format!("--{long}")) {
                    missing.push(format!("{name} --{long}"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "docs/cli.md lacks: {missing:?}");
}
