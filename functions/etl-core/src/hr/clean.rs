//! Cleaning and validation of generated employees, before anything touches the database.
//! A row that fails validation is kept, with its reason, as a reject: never dropped.

use chrono::NaiveDate;
use serde::Serialize;

/// Column limits of `hr.employees` (PostgreSQL counts characters, not bytes).
pub const NAME_MAX: usize = 50;
pub const JOB_TITLE_MAX: usize = 50;
pub const DEPARTMENT_MAX: usize = 50;
pub const EMAIL_MAX: usize = 254;
/// Salaries are whole cents in a sane annual range.
pub const SALARY_CENTS_RANGE: std::ops::RangeInclusive<i64> = 100_000..=100_000_000;

/// An employee as generated: untrusted text, possibly dirty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RawEmployee {
    pub index: i32,
    pub full_name: String,
    pub job_title: String,
    pub department: String,
    pub email: String,
    pub salary_cents: i64,
    pub hire_date: NaiveDate,
}

/// An employee that passed cleaning and validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Employee {
    pub index: i32,
    pub full_name: String,
    pub job_title: String,
    pub department: String,
    pub email: String,
    pub salary_cents: i64,
    pub hire_date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub raw: RawEmployee,
    pub reason: String,
}

/// Trims, collapses every whitespace run to one space, drops control characters, and
/// truncates to `max_chars` characters without splitting a letter from its combining accent.
pub fn clean_text(raw: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max_chars * 4));
    let mut pending_space = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if !c.is_control() {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    // Byte length bounds the character count, so most text is returned without counting.
    if out.len() <= max_chars || out.chars().count() <= max_chars {
        return out;
    }
    truncate_chars(&out, max_chars)
}

fn is_combining(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

fn truncate_chars(text: &str, max_chars: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max_chars {
        return text.to_string();
    }
    let mut end = max_chars;
    // Never leave a base letter without the accent that follows it.
    while end > 0 && is_combining(chars[end]) {
        end -= 1;
    }
    chars[..end]
        .iter()
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// Cleans a generated employee and checks every field; `Err` carries the reason.
pub fn clean_and_validate(
    raw: RawEmployee,
    hire_interval: (NaiveDate, NaiveDate),
) -> Result<Employee, Box<Reject>> {
    // Boxed: rejects are rare, and a small Result keeps the hot path lean.
    let reject = |raw: RawEmployee, reason: String| Err(Box::new(Reject { raw, reason }));
    let full_name = clean_text(&raw.full_name, NAME_MAX);
    let job_title = clean_text(&raw.job_title, JOB_TITLE_MAX);
    let department = clean_text(&raw.department, DEPARTMENT_MAX);
    let mut email = clean_text(&raw.email, EMAIL_MAX);
    // The same as `to_lowercase`, in place for the usual (ASCII) address.
    if email.is_ascii() {
        email.make_ascii_lowercase();
    } else {
        email = email.to_lowercase();
    }

    if full_name.is_empty() {
        return reject(raw, "full_name is empty after cleaning".into());
    }
    if job_title.is_empty() {
        return reject(raw, "job_title is empty after cleaning".into());
    }
    if department.is_empty() {
        return reject(raw, "department is empty after cleaning".into());
    }
    if !is_plausible_email(&email) {
        return reject(raw, format!("email {email:?} is not a valid address"));
    }
    if !SALARY_CENTS_RANGE.contains(&raw.salary_cents) {
        return reject(
            raw.clone(),
            format!(
                "salary {:.2} is outside 1000.00..=1000000.00",
                raw.salary_cents as f64 / 100.0
            ),
        );
    }
    let (start, end) = hire_interval;
    if raw.hire_date < start || raw.hire_date >= end {
        return reject(
            raw.clone(),
            format!(
                "hire_date {} is outside the data interval [{start}, {end})",
                raw.hire_date
            ),
        );
    }
    Ok(Employee {
        index: raw.index,
        full_name,
        job_title,
        department,
        email,
        salary_cents: raw.salary_cents,
        hire_date: raw.hire_date,
    })
}

fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.contains(' ')
        && email.is_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_is_trimmed_and_collapsed() {
        assert_eq!(clean_text("  José \t  García\n", 50), "José García");
        assert_eq!(clean_text("\u{0}Ana\u{7}", 50), "Ana");
        assert_eq!(clean_text("   ", 50), "");
    }

    #[test]
    fn truncation_keeps_accents_whole() {
        assert_eq!(clean_text("Íñigo Peñalver", 5), "Íñigo");
        // "e" + combining acute: cutting after the "e" would strip its accent, so the cut
        // moves before the letter instead.
        let decomposed = "Jose\u{301} Mari\u{301}a";
        assert_eq!(clean_text(decomposed, 4), "Jos");
        let truncated = clean_text(&"Ñ".repeat(80), 50);
        assert_eq!(truncated.chars().count(), 50);
        assert!(truncated.chars().all(|c| c == 'Ñ'));
    }

    fn raw() -> RawEmployee {
        RawEmployee {
            index: 7,
            full_name: " Begoña  Ibáñez ".into(),
            job_title: "Contable".into(),
            department: "Finanzas".into(),
            email: "Begona.Ibanez7@empresa.es".into(),
            salary_cents: 3_500_000,
            hire_date: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
        }
    }

    fn interval() -> (NaiveDate, NaiveDate) {
        (
            NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        )
    }

    #[test]
    fn a_good_row_is_cleaned() {
        let employee = clean_and_validate(raw(), interval()).unwrap();
        assert_eq!(employee.full_name, "Begoña Ibáñez");
        assert_eq!(employee.email, "begona.ibanez7@empresa.es");
    }

    #[test]
    fn bad_rows_are_rejected_with_a_reason() {
        type Spoil = Box<dyn Fn(&mut RawEmployee)>;
        let cases: Vec<(Spoil, &str)> = vec![
            (Box::new(|r| r.full_name = " \t ".into()), "full_name"),
            (Box::new(|r| r.email = "no-at-sign.es".into()), "email"),
            (Box::new(|r| r.salary_cents = -5), "salary"),
            (
                Box::new(|r| r.hire_date = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()),
                "hire_date",
            ),
        ];
        for (spoil, field) in cases {
            let mut row = raw();
            spoil(&mut row);
            let reject = clean_and_validate(row.clone(), interval()).unwrap_err();
            assert!(reject.reason.contains(field), "{}", reject.reason);
            assert_eq!(reject.raw, row, "the reject keeps the row as generated");
        }
    }
}
