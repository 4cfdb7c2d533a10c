//! `wgsplit COMMAND --help` for the commands without a help of their own
//! (`client`, `upstream` and `api` print theirs): found before any command
//! parses its arguments, so every command answers `--help` (or `-h`) the same
//! way, on stdout, exit 0, whatever else is on the line.

/// The usage of each command that has no help of its own.
pub fn usage_of(command: &str) -> Option<&'static str> {
    Some(match command {
        "config" => {
            "usage: wgsplit config check          validate the config; print every problem, exit 1 if any\n       \
             wgsplit config export         print the whole config as JSON\n       \
             wgsplit config import FILE|-  validate JSON and write it as the UCI config"
        }
        "lists" => super::lists::USAGE,
        "apply" => {
            "usage: wgsplit apply [--dry-run]   make the kernel match the config (--dry-run prints the plan)"
        }
        "down" => {
            "usage: wgsplit down   remove everything wgsplit created in this network namespace"
        }
        "daemon" => {
            "usage: wgsplit daemon   apply, keep the state true, check upstream health, answer DNS, serve the API"
        }
        "status" => {
            "usage: wgsplit status [--json]   interfaces, upstream health and the way its traffic takes, clients, lists"
        }
        "explain" => {
            "usage: wgsplit explain CLIENT DEST [--json] [--config-only]\n  \
             which way DEST goes from CLIENT, and which rule (or set element) decided, from\n  \
             the live state: the kernel's sets, upstream health, the failover in force.\n  \
             DEST: 1.2.3.4, 1.2.3.4:443/tcp, 2001:db8::1, [2001:db8::1], [2001:db8::1]:443/udp, example.com[:port]"
        }
        "dns-serve" => {
            "usage: wgsplit dns-serve --listen IP:PORT [--listen …] [--stats FILE] [--client-rate QPS[/BURST]]\n  \
             the resolver alone (tests and benches)"
        }
        "overview" => {
            "usage: wgsplit overview --json   status, clients and upstreams in one answer (for the LuCI pages)"
        }
        "fw4-include" => {
            "usage: wgsplit fw4-include   print the forward rules fw4 includes for the wgsplit zone"
        }
        "genkey" => "usage: wgsplit genkey   print a new private key",
        "pubkey" => "usage: wgsplit pubkey   read a private key on stdin, print its public key",
        _ => return None,
    })
}

/// The command of a command line (`wgsplit [-c PATH] COMMAND …`) and whether
/// `--help`/`-h` follows it; `None` when there is no command or no such flag.
pub fn asked(argv: &[String]) -> Option<&str> {
    let mut i = 1;
    while i < argv.len() {
        match argv[i].as_str() {
            "-c" | "--config" => i += 2,
            a if a.starts_with("--config=") => i += 1,
            "--" => return None,
            a if a.starts_with('-') => return None,
            command => {
                let rest = &argv[i + 1..];
                let help = rest
                    .iter()
                    .take_while(|a| *a != "--")
                    .any(|a| a == "--help" || a == "-h");
                return help.then_some(command);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn finds_the_command_past_the_global_options() {
        assert_eq!(asked(&argv("wgsplit daemon --help")), Some("daemon"));
        assert_eq!(asked(&argv("wgsplit -c /x lists update -h")), Some("lists"));
        assert_eq!(
            asked(&argv("wgsplit --config=/x explain a b --help")),
            Some("explain")
        );
        assert_eq!(asked(&argv("wgsplit daemon")), None);
        assert_eq!(asked(&argv("wgsplit --help")), None);
        assert_eq!(asked(&argv("wgsplit config import -- --help")), None);
    }

    #[test]
    fn every_command_of_the_main_help_has_a_usage_or_its_own_help() {
        for line in super::super::HELP.lines() {
            let Some(cmd) = line
                .strip_prefix("  ")
                .and_then(|l| l.split_whitespace().next())
            else {
                continue;
            };
            if cmd.starts_with('-') {
                continue;
            }
            let own = ["client", "upstream", "api"].contains(&cmd);
            assert!(own || usage_of(cmd).is_some(), "{cmd}");
        }
    }
}
