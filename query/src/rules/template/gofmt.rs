//! Go's `fmt` number formatting and `Sprintf`, as far as alert templates use them:
//! `%v %s %q %d %f %e %g %x %t %%` with flags `+ - 0 space`, width and precision.
//! Floats print like Go (`1e+06`, `+Inf`, `NaN`), which is what users see in
//! Prometheus' notifications.

use super::Value;

/// A float in Go's `%e` form with `prec` digits after the point (`1.50e+03`).
pub(super) fn fmt_e(v: f64, prec: usize, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let r = format!("{v:.prec$e}");
    go_exponent(&r, upper)
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: the shortest `%e` form (`1e+00`),
/// which is how the Prometheus API prints alert values.
pub(crate) fn fmt_e_shortest(v: f64) -> String {
    special(v).unwrap_or_else(|| go_exponent(&format!("{v:e}"), false))
}

/// Rust's `1.5e3` / `1.5e-7` exponent as Go writes it: `1.5e+03`, `1.5e-07`.
fn go_exponent(r: &str, upper: bool) -> String {
    let (mant, exp) = r.split_once('e').unwrap_or((r, "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    let e = if upper { 'E' } else { 'e' };
    if digits.len() < 2 {
        format!("{mant}{e}{sign}0{digits}")
    } else {
        format!("{mant}{e}{sign}{digits}")
    }
}

fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v.is_infinite() {
        Some(if v > 0.0 { "+Inf" } else { "-Inf" }.into())
    } else {
        None
    }
}

/// Go's `%f` with `prec` digits after the point.
pub(super) fn fmt_f(v: f64, prec: usize) -> String {
    special(v).unwrap_or_else(|| format!("{v:.prec$}"))
}

/// Go's `%g`: `prec` significant digits (`None` = the shortest that reads back
/// exactly, as `%v` prints floats); exponent form when the exponent is below -4 or
/// at least the precision (6 for the shortest form).
pub(super) fn fmt_g(v: f64, prec: Option<usize>, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let sci = match prec {
        None => format!("{v:e}"),
        Some(p) => {
            let p = p.max(1);
            format!("{:.*e}", p - 1, v)
        }
    };
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let eprec = match prec {
        None => 6,
        Some(p) => p.max(1) as i32,
    };
    let sign = if neg { "-" } else { "" };
    if exp < -4 || exp >= eprec {
        let frac = &digits[1..];
        let m = if frac.is_empty() {
            digits[..1].to_string()
        } else {
            format!("{}.{frac}", &digits[..1])
        };
        return format!("{sign}{}", go_exponent(&format!("{m}e{exp}"), upper));
    }
    // Fixed form: place the point after exp+1 digits.
    let point = exp + 1;
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        format!(
            "{}.{}",
            &digits[..point as usize],
            &digits[point as usize..]
        )
    };
    format!("{sign}{body}")
}

/// How a value prints with `%v` (and `{{ . }}`).
pub(super) fn display(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Float(f) => fmt_g(*f, None, false),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Map(m) => {
            let inner: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("map[{}]", inner.join(" "))
        }
        Value::List(l) => {
            let inner: Vec<String> = l.iter().map(display).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Data(_) => "{…}".into(),
        Value::Obj(o) => {
            let inner: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{k}:{}", display(v)))
                .collect();
            format!("{{{}}}", inner.join(" "))
        }
        Value::Nil => "<no value>".into(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Str(_) => "string",
        Value::Float(_) => "float64",
        Value::Int(_) => "int",
        Value::Bool(_) => "bool",
        Value::Map(_) => "map[string]string",
        Value::List(_) => "[]interface {}",
        Value::Data(_) | Value::Obj(_) => "struct",
        Value::Nil => "<nil>",
    }
}

#[derive(Default)]
struct Spec {
    plus: bool,
    minus: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

impl Spec {
    fn pad(&self, s: String, numeric: bool) -> String {
        let Some(w) = self.width else { return s };
        let n = s.chars().count();
        if n >= w {
            return s;
        }
        let fill = w - n;
        if self.minus {
            format!("{s}{}", " ".repeat(fill))
        } else if self.zero && numeric {
            let (sign, rest) = match s.strip_prefix(['-', '+']) {
                Some(r) => (&s[..1], r),
                None => ("", s.as_str()),
            };
            format!("{sign}{}{rest}", "0".repeat(fill))
        } else {
            format!("{}{s}", " ".repeat(fill))
        }
    }

    fn signed(&self, s: String) -> String {
        if s.starts_with('-') || s.starts_with('+') {
            s
        } else if self.plus {
            format!("+{s}")
        } else if self.space {
            format!(" {s}")
        } else {
            s
        }
    }
}

/// Go's `fmt.Sprintf`. Mismatches print as Go does (`%!d(string=x)`, `%!s(MISSING)`).
pub(super) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '+' => spec.plus = true,
                '-' => spec.minus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => {}
                _ => break,
            }
            chars.next();
        }
        let num = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
                chars.next();
            }
            n
        };
        spec.width = num(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(num(&mut chars).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        out.push_str(&format_one(verb, &spec, arg));
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| format!("{}={}", type_name(a), display(a)))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn bad(verb: char, arg: &Value) -> String {
    format!("%!{verb}({}={})", type_name(arg), display(arg))
}

fn format_one(verb: char, spec: &Spec, arg: &Value) -> String {
    match (verb, arg) {
        ('v', Value::Float(f)) => spec.pad(spec.signed(fmt_g(*f, spec.prec, false)), true),
        ('v', Value::Int(i)) | ('d', Value::Int(i)) => spec.pad(spec.signed(i.to_string()), true),
        (
            'v' | 's',
            v @ (Value::Str(_)
            | Value::Bool(_)
            | Value::Map(_)
            | Value::List(_)
            | Value::Nil
            | Value::Data(_)
            | Value::Obj(_)),
        ) => {
            let mut s = display(v);
            if let (Some(p), Value::Str(_)) = (spec.prec, v) {
                s = s.chars().take(p).collect();
            }
            spec.pad(s, false)
        }
        ('t', Value::Bool(b)) => spec.pad(b.to_string(), false),
        ('q', Value::Str(s)) => spec.pad(format!("{s:?}"), false),
        ('f' | 'F', Value::Float(f)) => {
            spec.pad(spec.signed(fmt_f(*f, spec.prec.unwrap_or(6))), true)
        }
        ('f' | 'F', Value::Int(i)) => bad(verb, &Value::Int(*i)),
        ('e' | 'E', Value::Float(f)) => spec.pad(
            spec.signed(fmt_e(*f, spec.prec.unwrap_or(6), verb == 'E')),
            true,
        ),
        ('g' | 'G', Value::Float(f)) => {
            spec.pad(spec.signed(fmt_g(*f, spec.prec, verb == 'G')), true)
        }
        ('x', Value::Int(i)) => spec.pad(format!("{i:x}"), true),
        ('X', Value::Int(i)) => spec.pad(format!("{i:X}"), true),
        ('x', Value::Str(s)) => spec.pad(hex::encode(s), false),
        ('X', Value::Str(s)) => spec.pad(hex::encode_upper(s), false),
        (_, a) => bad(verb, a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go() {
        for (v, want) in [
            (1.0, "1"),
            (1e6, "1e+06"),
            (100000.0, "100000"),
            (123456789.0, "1.23456789e+08"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (f64::INFINITY, "+Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(fmt_g(v, None, false), want, "{v}");
        }
        for (v, want) in [
            (1.0, "1"),
            (1234.5678, "1235"),
            (12345.678, "1.235e+04"),
            (0.5, "0.5"),
            (0.0, "0"),
            (999.96, "1000"),
            (9999.6, "1e+04"),
        ] {
            assert_eq!(fmt_g(v, Some(4), false), want, "{v}");
        }
    }

    #[test]
    fn sprintf_verbs() {
        let f = Value::Float(1.23456);
        assert_eq!(sprintf("%.2f", std::slice::from_ref(&f)), "1.23");
        assert_eq!(
            sprintf("%5.1f|%-6s|", &[f.clone(), Value::Str("ab".into())]),
            "  1.2|ab    |"
        );
        assert_eq!(sprintf("%d%%", &[Value::Int(42)]), "42%");
        assert_eq!(sprintf("%e", &[Value::Float(1500.0)]), "1.500000e+03");
        assert_eq!(sprintf("%d", &[Value::Str("x".into())]), "%!d(string=x)");
        assert_eq!(
            sprintf("%s %s", &[Value::Str("a".into())]),
            "a %!s(MISSING)"
        );
        assert_eq!(sprintf("%v", &[f, Value::Int(1)]), "1.23456%!(EXTRA int=1)");
        assert_eq!(sprintf("%q", &[Value::Str("a\"b".into())]), "\"a\\\"b\"");
        assert_eq!(sprintf("%05d", &[Value::Int(-42)]), "-0042");
    }
}
