//! The two rule syntaxes Traefik 3.7 parses (`ruleSyntax: v2 | v3`) and the
//! matcher functions each one registers, with Traefik's four spellings of
//! every name (`pkg/rules/parser.go`: as written, lower, upper, and title of
//! lower: `PathPrefix`, `pathprefix`, `PATHPREFIX`, `Pathprefix`).
//!
//! A name that exists only in the other syntax is refused as Traefik refuses
//! it (`unsupported function`), with a hint saying which syntax it belongs
//! to. Control plane only.

/// Which of Traefik's rule languages a router's rule is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RuleSyntax {
    /// Traefik v2's language (`pkg/muxer/http/matcher_v2.go`): matchers take
    /// several values, `{name:regex}` templates in `HostRegexp`, `Path`,
    /// `PathPrefix` and `Query`, `Headers`/`HeadersRegexp`, `Query(k=v)`.
    V2,
    /// Traefik v3's language, the default.
    #[default]
    V3,
}

impl RuleSyntax {
    /// The syntax of a router from its `ruleSyntax` value, as Traefik picks
    /// it: `v2` is v2, an empty value takes `default` (the static
    /// `core.defaultRuleSyntax`), and any other value is parsed as v3
    /// (Traefik falls back to v3 for names it does not know, `default`
    /// included). The second value says whether `value` was not one of the
    /// names Traefik documents (`v2`, `v3`), for a warning.
    pub fn for_router(value: &str, default: RuleSyntax) -> (RuleSyntax, bool) {
        match value {
            "" => (default, false),
            "v2" => (RuleSyntax::V2, false),
            "v3" => (RuleSyntax::V3, false),
            _ => (RuleSyntax::V3, true),
        }
    }

    /// The static `core.defaultRuleSyntax` value: `v2` or `v3` (Traefik
    /// refuses anything else at startup).
    pub fn from_default_setting(value: &str) -> Option<RuleSyntax> {
        match value {
            "v2" => Some(RuleSyntax::V2),
            "v3" => Some(RuleSyntax::V3),
            _ => None,
        }
    }

    /// `v2` or `v3`.
    pub fn name(self) -> &'static str {
        match self {
            RuleSyntax::V2 => "v2",
            RuleSyntax::V3 => "v3",
        }
    }

    fn funcs(self) -> &'static [Func] {
        match self {
            RuleSyntax::V3 => &V3_FUNCS,
            RuleSyntax::V2 => &V2_FUNCS,
        }
    }

    fn other(self) -> RuleSyntax {
        match self {
            RuleSyntax::V2 => RuleSyntax::V3,
            RuleSyntax::V3 => RuleSyntax::V2,
        }
    }
}

/// A matcher function of either syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    ClientIp,
    Method,
    Host,
    HostHeader,
    HostRegexp,
    Path,
    PathRegexp,
    PathPrefix,
    Header,
    HeaderRegexp,
    Headers,
    HeadersRegexp,
    Query,
    QueryRegexp,
}

const V3_FUNCS: [Func; 11] = [
    Func::ClientIp,
    Func::Method,
    Func::Host,
    Func::HostRegexp,
    Func::Path,
    Func::PathRegexp,
    Func::PathPrefix,
    Func::Header,
    Func::HeaderRegexp,
    Func::Query,
    Func::QueryRegexp,
];

const V2_FUNCS: [Func; 10] = [
    Func::Host,
    Func::HostHeader,
    Func::HostRegexp,
    Func::ClientIp,
    Func::Path,
    Func::PathPrefix,
    Func::Method,
    Func::Headers,
    Func::HeadersRegexp,
    Func::Query,
];

impl Func {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Func::ClientIp => "ClientIP",
            Func::Method => "Method",
            Func::Host => "Host",
            Func::HostHeader => "HostHeader",
            Func::HostRegexp => "HostRegexp",
            Func::Path => "Path",
            Func::PathRegexp => "PathRegexp",
            Func::PathPrefix => "PathPrefix",
            Func::Header => "Header",
            Func::HeaderRegexp => "HeaderRegexp",
            Func::Headers => "Headers",
            Func::HeadersRegexp => "HeadersRegexp",
            Func::Query => "Query",
            Func::QueryRegexp => "QueryRegexp",
        }
    }

    /// Whether `written` is one of the four spellings Traefik registers.
    fn spelled(self, written: &str) -> bool {
        let n = self.name();
        written == n
            || written == n.to_ascii_lowercase()
            || written == n.to_ascii_uppercase()
            || written == title_of_lower(n)
    }

    /// The v3 way to write this v2-only matcher.
    fn v3_equivalent(self) -> Option<&'static str> {
        match self {
            Func::HostHeader => Some("Host"),
            Func::Headers => Some("Header"),
            Func::HeadersRegexp => Some("HeaderRegexp"),
            _ => None,
        }
    }
}

fn title_of_lower(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let mut out = String::with_capacity(lower.len());
    let mut chars = lower.chars();
    if let Some(first) = chars.next() {
        out.push(first.to_ascii_uppercase());
        out.extend(chars);
    }
    out
}

/// The function `name` calls in `syntax`, or the user-facing reason it is
/// not one.
pub(crate) fn resolve(name: &str, syntax: RuleSyntax) -> Result<Func, String> {
    if let Some(f) = syntax.funcs().iter().find(|f| f.spelled(name)) {
        return Ok(*f);
    }
    if let Some(f) = syntax.other().funcs().iter().find(|f| f.spelled(name)) {
        return Err(match syntax {
            RuleSyntax::V3 => format!(
                "unsupported function \"{name}\": it is a v2 matcher; set `ruleSyntax: v2` on the router{}",
                f.v3_equivalent()
                    .map(|v3| format!(", or write it as {v3}(...) in v3"))
                    .unwrap_or_default()
            ),
            RuleSyntax::V2 => format!(
                "unsupported function \"{name}\": it is a v3 matcher and this rule is parsed in the v2 syntax (`ruleSyntax: v2`, or `core.defaultRuleSyntax: v2` without ruleSyntax)"
            ),
        });
    }
    let lower = name.to_lowercase();
    let suggestion = syntax
        .funcs()
        .iter()
        .map(|f| {
            (
                osa_distance(&lower, &f.name().to_ascii_lowercase()),
                f.name(),
            )
        })
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d);
    Err(match suggestion {
        Some((_, s)) => format!("unknown matcher \"{name}\" (did you mean \"{s}\"?)"),
        None => format!("unknown matcher \"{name}\""),
    })
}

/// Optimal string alignment distance (Levenshtein plus transpositions).
fn osa_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}
