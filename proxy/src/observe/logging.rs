//! Process logging: a `tracing-subscriber` on stderr, text or JSON, at one of
//! Traefik's log levels.
//!
//! Control plane only: called once at start (and by tests, where the second
//! call is a harmless no-op).

use tracing::Level;

/// Maps a Traefik `log.level` (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`,
/// `FATAL`, `PANIC`, any case) to a `tracing` level.
///
/// `FATAL` and `PANIC` have no `tracing` counterpart and map to `ERROR`, the
/// most severe level `tracing` has. Returns `None` for anything else.
pub fn parse_level(level: &str) -> Option<Level> {
    let level = level.trim();
    let known = [
        ("TRACE", Level::TRACE),
        ("DEBUG", Level::DEBUG),
        ("INFO", Level::INFO),
        ("WARN", Level::WARN),
        ("ERROR", Level::ERROR),
        ("FATAL", Level::ERROR),
        ("PANIC", Level::ERROR),
    ];
    known
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(level))
        .map(|&(_, l)| l)
}

/// Installs the global `tracing` subscriber writing to stderr.
///
/// `level` is a Traefik level (see [`parse_level`]). As Traefik does, an
/// unknown or empty level falls back to `ERROR` and says so in the log.
/// `json` selects one JSON object per line instead of text.
///
/// Safe to call more than once: only the first call installs a subscriber
/// (`try_init`), later calls change nothing.
pub fn init_logging(level: &str, json: bool) {
    let parsed = parse_level(level);
    let max = parsed.unwrap_or(Level::ERROR);
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(max)
        .with_target(false);
    let installed = if json {
        builder.json().try_init().is_ok()
    } else {
        builder.try_init().is_ok()
    };
    if installed && parsed.is_none() {
        tracing::error!(
            log_level = level,
            "unspecified or invalid log level, setting the level to default (ERROR)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traefik_levels_parse_in_any_case() {
        assert_eq!(parse_level("debug"), Some(Level::DEBUG));
        assert_eq!(parse_level("Info"), Some(Level::INFO));
        assert_eq!(parse_level("WARN"), Some(Level::WARN));
        assert_eq!(parse_level("trace"), Some(Level::TRACE));
        assert_eq!(parse_level("ERROR"), Some(Level::ERROR));
        assert_eq!(parse_level("fatal"), Some(Level::ERROR));
        assert_eq!(parse_level("PANIC"), Some(Level::ERROR));
        assert_eq!(parse_level("warning"), None);
        assert_eq!(parse_level(""), None);
    }

    #[test]
    fn init_twice_is_harmless() {
        init_logging("info", false);
        init_logging("DEBUG", true);
        tracing::info!("still fine");
    }
}
