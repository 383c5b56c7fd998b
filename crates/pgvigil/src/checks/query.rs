//! check_pg_query: the first column of the first row of an operator's query,
//! compared with -w/-c (check_pgsql -q, check_postgres custom_query).

use postgres::types::{FromSql, Type};

use crate::check::{Check, Context, Judging};
use crate::session::Session;
use pgvigil_kit::units::format_number;
use pgvigil_kit::{CheckResult, Error, PerfData, Unit, UnitSpec};

pub struct Query;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Query")]
pub struct Args {
    /// SQL whose first column of the first row is a number (runs in a read-only transaction)
    #[arg(long, value_name = "SQL")]
    pub query: String,
    /// Name of the value in the summary and the perfdata
    #[arg(long, value_name = "NAME", default_value = "result")]
    pub label: String,
}

impl Check for Query {
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Count], Some(Unit::Count));
    const HINT: &'static str = "rerun the query by hand (psql) to see the rows behind the value, and compare with the thresholds the service sets";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to the number the query returns.";
    type Args = Args;
    /// The number the query returned.
    type Measured = f64;

    fn fetch(args: &Args, db: &mut Session, _ctx: &Context) -> Result<f64, Error> {
        let rows = db.query(&args.query)?;
        let row = rows
            .first()
            .ok_or_else(|| Error::Query("the query returned no rows".into()))?;
        if row.is_empty() {
            return Err(Error::Query("the query returned no columns".into()));
        }
        match row.try_get::<_, Option<Number>>(0) {
            Ok(Some(Number(v))) => Ok(v),
            Ok(None) => Err(Error::Query("the query returned NULL".into())),
            Err(e) => Err(Error::Query(match e.into_source() {
                Some(source) => format!("first column is {source}"),
                None => "first column is not a number".into(),
            })),
        }
    }

    /// The number the query returned against `-w`/`-c`, under its label.
    fn judge(value: &f64, judging: &Judging<Args>) -> CheckResult {
        let (value, label, t) = (*value, &judging.args.label, judging.thresholds);
        let status = t.status(&[(Unit::Count, value)]);
        let summary = format!("{label} is {}", format_number(value));
        let perf = PerfData::new(label, value, Unit::Count).thresholds(t);
        CheckResult::new(status, summary).perf([perf])
    }
}

/// Any numeric SQL value, read from its binary form.
struct Number(f64);

impl<'a> FromSql<'a> for Number {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let value = match *ty {
            Type::INT2 => i16::from_sql(ty, raw)? as f64,
            Type::INT4 => i32::from_sql(ty, raw)? as f64,
            Type::INT8 => i64::from_sql(ty, raw)? as f64,
            Type::OID => u32::from_sql(ty, raw)? as f64,
            Type::FLOAT4 => f32::from_sql(ty, raw)? as f64,
            Type::FLOAT8 => f64::from_sql(ty, raw)?,
            Type::NUMERIC => numeric(raw)?,
            _ => {
                let text = String::from_sql(ty, raw)?;
                text.trim()
                    .parse()
                    .map_err(|_| format!("'{}', not a number", text.trim()))?
            }
        };
        if !value.is_finite() {
            return Err("not a finite number".into());
        }
        Ok(Number(value))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::OID
                | Type::FLOAT4
                | Type::FLOAT8
                | Type::NUMERIC
        ) || <String as FromSql>::accepts(ty)
    }
}

/// NUMERIC's wire form: digit count, weight, sign, scale, then base-10000 digits.
fn numeric(raw: &[u8]) -> Result<f64, Box<dyn std::error::Error + Sync + Send>> {
    let word = |i: usize| -> Result<i16, String> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".to_string())
    };
    let ndigits = word(0)? as usize;
    let weight = word(1)? as i32;
    let sign = word(2)? as u16;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("NaN".into()),
        _ => return Err("infinite".into()),
    }
    let mut value = 0.0;
    for i in 0..ndigits {
        value += f64::from(word(4 + i)?) * 10000f64.powi(weight - i as i32);
    }
    Ok(if sign == 0x4000 { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{options, perf, reported, thresholds};
    use pgvigil_kit::Status;
    use pgvigil_kit::Thresholds;

    fn judge(value: f64, label: &str, t: &Thresholds) -> CheckResult {
        let args = options(&["--query", "SELECT 1", "--label", label]);
        crate::checks::testing::judge::<Query>(&value, &args, t, 0)
    }

    #[test]
    fn the_number_meets_the_ranges_under_its_label() {
        let t = thresholds::<Query>(Some("5"), Some("20"));
        let r = judge(5.0, "idle_tx", &t);
        assert_eq!((r.status, r.summary.as_str()), (Status::Ok, "idle_tx is 5"));
        assert_eq!(perf(&r), ["idle_tx=5;5;20"]);
        assert_eq!(judge(5.5, "x", &t).status, Status::Warning);
        // Below the ranges' start (0) is outside both.
        assert_eq!(judge(-1.0, "x", &t).status, Status::Critical);
        let r = reported::<Query>(judge(21.0, "x", &t));
        assert_eq!(r.status, Status::Critical);
        assert!(r.hint.unwrap().starts_with("rerun the query by hand"));
        // No thresholds, no default: any number is OK.
        assert_eq!(
            judge(1e12, "x", &thresholds::<Query>(None, None)).status,
            Status::Ok
        );
        let r = judge(0.25, "ratio", &thresholds::<Query>(Some("@0:0.5"), None));
        assert_eq!(
            (r.status, r.summary.as_str()),
            (Status::Warning, "ratio is 0.25")
        );
    }

    fn encode(ndigits: i16, weight: i16, sign: u16, digits: &[i16]) -> Vec<u8> {
        let mut raw = Vec::new();
        for w in [ndigits, weight, sign as i16, 0] {
            raw.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            raw.extend_from_slice(&d.to_be_bytes());
        }
        raw
    }

    #[test]
    fn decodes_numeric_wire_format() {
        // 12345.678 = [1][2345].[6780]
        assert_eq!(
            numeric(&encode(3, 1, 0, &[1, 2345, 6780])).unwrap(),
            12345.678
        );
        assert_eq!(numeric(&encode(1, -1, 0x4000, &[5000])).unwrap(), -0.5);
        assert_eq!(numeric(&encode(0, 0, 0, &[])).unwrap(), 0.0);
        assert!(numeric(&encode(0, 0, 0xC000, &[])).is_err());
        assert!(numeric(&[0, 1]).is_err());
    }
}
