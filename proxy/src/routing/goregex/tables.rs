//! The named character classes of Go's `regexp/syntax` as Traefik 3.7's Go
//! (1.26) resolves them: Perl (`\d \s \w`, ASCII-only), POSIX (`[:alpha:]`,
//! ASCII-only) and Unicode (`\pL`, `\p{Greek}`, `\p{Letter}`).
//!
//! Unicode names follow Go's lookup, not Rust's: the name is canonicalised
//! (separators `_ - space` dropped, first letter upper-case, the rest
//! lower-case) and then looked up in Go's category and script tables, whose
//! keys are compared as written. So `\p{greek}` and `\p{Cased_Letter}` work
//! while `\p{Old_Italic}` and `\p{SignWriting}` do not (their canonical form is
//! not a key), and Rust-only properties (`\p{Alphabetic}`, `\p{sc=Greek}`,
//! script extensions, Unicode 16 scripts) are refused as Go refuses them.
//! The code points come from regex-syntax's tables (Unicode 16.0; Go 1.26
//! ships 15.0, so code points assigned in 16.0 differ).
//!
//! Control plane only: runs when a rule is compiled.

use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, HirKind};

/// A class in Go's rune space: ranges of `u32` that may include surrogates
/// (which no UTF-8 text decodes to, so they never match and are dropped when
/// converted to a Rust class).
pub(super) fn class_from_runes(ranges: impl IntoIterator<Item = (u32, u32)>) -> ClassUnicode {
    let mut out = ClassUnicode::empty();
    for (lo, hi) in ranges {
        push_runes(&mut out, lo, hi);
    }
    out
}

/// Adds `lo..=hi` (Go runes, at most U+10FFFF) without the surrogates.
pub(super) fn push_runes(class: &mut ClassUnicode, lo: u32, hi: u32) {
    let mut add = |a: u32, b: u32| {
        if a <= b
            && let (Some(a), Some(b)) = (char::from_u32(a), char::from_u32(b))
        {
            class.push(ClassUnicodeRange::new(a, b));
        }
    };
    if hi < 0xD800 || lo > 0xDFFF {
        add(lo, hi);
    } else {
        if lo < 0xD800 {
            add(lo, 0xD7FF);
        }
        if hi > 0xDFFF {
            add(0xE000, hi);
        }
    }
}

/// `\d \D \s \S \w \W`: (class, negated), or `None` for another letter.
pub(super) fn perl(letter: u8) -> Option<(ClassUnicode, bool)> {
    let ranges: &[(u32, u32)] = match letter.to_ascii_lowercase() {
        b'd' => &[(0x30, 0x39)],
        b's' => &[(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)],
        b'w' => &[(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
        _ => return None,
    };
    Some((
        class_from_runes(ranges.iter().copied()),
        letter.is_ascii_uppercase(),
    ))
}

/// `[:name:]` or `[:^name:]` (the brackets and colons included).
pub(super) fn posix(name: &str) -> Option<(ClassUnicode, bool)> {
    let inner = name.strip_prefix("[:")?.strip_suffix(":]")?;
    let (inner, negated) = match inner.strip_prefix('^') {
        Some(rest) => (rest, true),
        None => (inner, false),
    };
    let ranges: &[(u32, u32)] = match inner {
        "alnum" => &[(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
        "alpha" => &[(0x41, 0x5A), (0x61, 0x7A)],
        "ascii" => &[(0x00, 0x7F)],
        "blank" => &[(0x09, 0x09), (0x20, 0x20)],
        "cntrl" => &[(0x00, 0x1F), (0x7F, 0x7F)],
        "digit" => &[(0x30, 0x39)],
        "graph" => &[(0x21, 0x7E)],
        "lower" => &[(0x61, 0x7A)],
        "print" => &[(0x20, 0x7E)],
        "punct" => &[(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
        "space" => &[(0x09, 0x0D), (0x20, 0x20)],
        "upper" => &[(0x41, 0x5A)],
        "word" => &[(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
        "xdigit" => &[(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
        _ => return None,
    };
    Some((class_from_runes(ranges.iter().copied()), negated))
}

/// Go's `canonicalName`: separators removed, the first letter upper-case and
/// every other ASCII letter lower-case.
pub(super) fn canonical_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut first = true;
    for c in name.chars() {
        match c {
            '_' | '-' | ' ' => {}
            c if first => {
                out.push(c.to_ascii_uppercase());
                first = false;
            }
            c => out.push(c.to_ascii_lowercase()),
        }
    }
    out
}

/// Go 1.26's general categories (`unicode.Categories`, `LC` and `Cn`
/// included, `C` covering `Cn` as since Go 1.25).
const CATEGORIES: &[&str] = &[
    "C", "Cc", "Cf", "Cn", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn",
    "N", "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm",
    "So", "Z", "Zl", "Zp", "Zs",
];

/// The `unicode.Scripts` keys of Go 1.26 (Unicode 15.0) a canonical name can
/// reach: one word, capitalised. Multi-word scripts (`Old_Italic`) and
/// `SignWriting` are keys too, but Go's lookup never finds them.
const SCRIPTS: &[&str] = &[
    "Adlam",
    "Ahom",
    "Arabic",
    "Armenian",
    "Avestan",
    "Balinese",
    "Bamum",
    "Batak",
    "Bengali",
    "Bhaiksuki",
    "Bopomofo",
    "Brahmi",
    "Braille",
    "Buginese",
    "Buhid",
    "Carian",
    "Chakma",
    "Cham",
    "Cherokee",
    "Chorasmian",
    "Common",
    "Coptic",
    "Cuneiform",
    "Cypriot",
    "Cyrillic",
    "Deseret",
    "Devanagari",
    "Dogra",
    "Duployan",
    "Elbasan",
    "Elymaic",
    "Ethiopic",
    "Georgian",
    "Glagolitic",
    "Gothic",
    "Grantha",
    "Greek",
    "Gujarati",
    "Gurmukhi",
    "Han",
    "Hangul",
    "Hanunoo",
    "Hatran",
    "Hebrew",
    "Hiragana",
    "Inherited",
    "Javanese",
    "Kaithi",
    "Kannada",
    "Katakana",
    "Kawi",
    "Kharoshthi",
    "Khmer",
    "Khojki",
    "Khudawadi",
    "Lao",
    "Latin",
    "Lepcha",
    "Limbu",
    "Lisu",
    "Lycian",
    "Lydian",
    "Mahajani",
    "Makasar",
    "Malayalam",
    "Mandaic",
    "Manichaean",
    "Marchen",
    "Medefaidrin",
    "Miao",
    "Modi",
    "Mongolian",
    "Mro",
    "Multani",
    "Myanmar",
    "Nabataean",
    "Nandinagari",
    "Newa",
    "Nko",
    "Nushu",
    "Ogham",
    "Oriya",
    "Osage",
    "Osmanya",
    "Palmyrene",
    "Phoenician",
    "Rejang",
    "Runic",
    "Samaritan",
    "Saurashtra",
    "Sharada",
    "Shavian",
    "Siddham",
    "Sinhala",
    "Sogdian",
    "Soyombo",
    "Sundanese",
    "Syriac",
    "Tagalog",
    "Tagbanwa",
    "Takri",
    "Tamil",
    "Tangsa",
    "Tangut",
    "Telugu",
    "Thaana",
    "Thai",
    "Tibetan",
    "Tifinagh",
    "Tirhuta",
    "Toto",
    "Ugaritic",
    "Vai",
    "Vithkuqi",
    "Wancho",
    "Yezidi",
    "Yi",
];

/// `unicode.CategoryAliases` (Unicode's long category names and the POSIX
/// compatibility ones), keyed by their canonical name.
const CATEGORY_ALIASES: &[(&str, &str)] = &[
    ("Casedletter", "LC"),
    ("Closepunctuation", "Pe"),
    ("Cntrl", "Cc"),
    ("Combiningmark", "M"),
    ("Connectorpunctuation", "Pc"),
    ("Control", "Cc"),
    ("Currencysymbol", "Sc"),
    ("Dashpunctuation", "Pd"),
    ("Decimalnumber", "Nd"),
    ("Digit", "Nd"),
    ("Enclosingmark", "Me"),
    ("Finalpunctuation", "Pf"),
    ("Format", "Cf"),
    ("Initialpunctuation", "Pi"),
    ("Letter", "L"),
    ("Letternumber", "Nl"),
    ("Lineseparator", "Zl"),
    ("Lowercaseletter", "Ll"),
    ("Mark", "M"),
    ("Mathsymbol", "Sm"),
    ("Modifierletter", "Lm"),
    ("Modifiersymbol", "Sk"),
    ("Nonspacingmark", "Mn"),
    ("Number", "N"),
    ("Openpunctuation", "Ps"),
    ("Other", "C"),
    ("Otherletter", "Lo"),
    ("Othernumber", "No"),
    ("Otherpunctuation", "Po"),
    ("Othersymbol", "So"),
    ("Paragraphseparator", "Zp"),
    ("Privateuse", "Co"),
    ("Punct", "P"),
    ("Punctuation", "P"),
    ("Separator", "Z"),
    ("Spaceseparator", "Zs"),
    ("Spacingmark", "Mc"),
    ("Surrogate", "Cs"),
    ("Symbol", "S"),
    ("Titlecaseletter", "Lt"),
    ("Unassigned", "Cn"),
    ("Uppercaseletter", "Lu"),
];

/// The class a `\p{name}` names in Go: (class, negated), or `None` when Go
/// rejects the name.
pub(super) fn unicode(name: &str) -> Option<(ClassUnicode, bool)> {
    let name = canonical_name(name);
    let property = match name.as_str() {
        "Any" => return Some((class_from_runes([(0, 0x10FFFF)]), false)),
        // Go inverts Cn; the result is the same as Unicode's Assigned.
        "Assigned" => return Some((rust_class("gc=Cn")?, true)),
        "Ascii" => return Some((class_from_runes([(0, 0x7F)]), false)),
        "Lc" => "gc=LC".to_owned(),
        n if CATEGORIES.contains(&n) => format!("gc={n}"),
        n if SCRIPTS.contains(&n) => format!("sc={n}"),
        n => {
            let (_, category) = CATEGORY_ALIASES.iter().find(|(alias, _)| *alias == n)?;
            format!("gc={category}")
        }
    };
    Some((rust_class(&property)?, false))
}

/// The code points of a Unicode property, from regex-syntax's tables.
fn rust_class(property: &str) -> Option<ClassUnicode> {
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(&format!("\\p{{{property}}}"))
        .ok()?;
    match hir.into_kind() {
        HirKind::Class(Class::Unicode(class)) => Some(class),
        _ => None,
    }
}
