//! Deterministic fake employees: the same (logical date, seed, index) always gives the same
//! person, so a retried or re-run load reproduces exactly the rows it had.

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};
use fake::faker::name::raw::{FirstName, LastName};
use fake::locales::EN;
use fake::Fake;
use rand::rngs::StdRng;

use crate::rng::mix;
use rand::{RngExt, SeedableRng};

use super::clean::RawEmployee;
use super::locale::{en, es_es, Locale};

/// What one hire batch generates.
#[derive(Debug, Clone, Copy)]
pub struct HireBatch {
    pub hire_date: NaiveDate,
    pub seed: u64,
    pub locale: Locale,
}

/// Share of rows with messy whitespace (cleaning fixes them) and of rows that are invalid
/// (validation rejects them): generated on purpose, as real feeds have both.
const MESSY_PER_MILLE: u32 = 30;
const INVALID_PER_MILLE: u32 = 2;

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// ASCII for e-mail addresses: "Begoña Ibáñez" → "begona.ibanez", appended to `out`.
fn ascii_fold_into(out: &mut String, text: &str) {
    for c in text.chars() {
        let folded = match c {
            'á' | 'à' | 'â' | 'ä' | 'Á' | 'À' | 'Â' | 'Ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Ì' | 'Î' | 'Ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'Ó' | 'Ò' | 'Ô' | 'Ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' | 'Ú' | 'Ù' | 'Û' | 'Ü' => 'u',
            'ñ' | 'Ñ' => 'n',
            'ç' | 'Ç' => 'c',
            ' ' | '-' | '\'' => '.',
            c if c.is_ascii_alphanumeric() => c.to_ascii_lowercase(),
            _ => continue,
        };
        out.push(folded);
    }
}

#[cfg(test)]
fn ascii_fold(text: &str) -> String {
    let mut out = String::new();
    ascii_fold_into(&mut out, text);
    out
}

/// `a` and `b` joined by a space, allocated once (this runs a million times a batch).
fn joined(a: &str, b: &str) -> String {
    let mut out = String::with_capacity(a.len() + 1 + b.len());
    out.push_str(a);
    out.push(' ');
    out.push_str(b);
    out
}

impl HireBatch {
    fn rng_for(&self, index: u32) -> StdRng {
        let day = self.hire_date.num_days_from_ce() as u64;
        StdRng::seed_from_u64(mix(mix(mix(day) ^ self.seed) ^ u64::from(index)))
    }

    /// The employee at `index` of this batch.
    pub fn employee(&self, index: u32) -> RawEmployee {
        let mut rng = self.rng_for(index);
        let (first, last, job, department, domain) = match self.locale {
            Locale::EsEs => (
                pick(&mut rng, es_es::FIRST_NAMES).to_string(),
                {
                    // Two picks, in this order: the first surname, then the second.
                    let first_surname = pick(&mut rng, es_es::LAST_NAMES);
                    joined(first_surname, pick(&mut rng, es_es::LAST_NAMES))
                },
                pick(&mut rng, es_es::JOB_TITLES).to_string(),
                pick(&mut rng, es_es::DEPARTMENTS),
                es_es::EMAIL_DOMAIN,
            ),
            Locale::En => (
                FirstName(EN).fake_with_rng::<String, _>(&mut rng),
                LastName(EN).fake_with_rng::<String, _>(&mut rng),
                fake::faker::job::raw::Title(EN).fake_with_rng::<String, _>(&mut rng),
                pick(&mut rng, en::DEPARTMENTS),
                en::EMAIL_DOMAIN,
            ),
        };
        // Emails come from the generated name (the fake crate's SafeEmail does not):
        // "<first>.<last><index mod 1000>@<domain>", built in one allocation.
        let mut email = String::with_capacity(first.len() + last.len() + domain.len() + 6);
        ascii_fold_into(&mut email, &first);
        email.push('.');
        ascii_fold_into(&mut email, &last);
        // Writing to a String cannot fail.
        let _ = write!(email, "{}@", index % 1000);
        email.push_str(domain);
        let mut employee = RawEmployee {
            index: index as i32,
            full_name: joined(&first, &last),
            job_title: job,
            department: department.to_string(),
            email,
            salary_cents: rng.random_range(18_000_i64..=95_000) * 100 + rng.random_range(0..100),
            hire_date: self.hire_date,
        };

        let roll = rng.random_range(0..1000u32);
        if roll < INVALID_PER_MILLE {
            match rng.random_range(0..3u8) {
                0 => employee.full_name = "  \t ".into(),
                1 => employee.salary_cents = -employee.salary_cents,
                _ => employee.email = employee.email.replace('@', " at "),
            }
        } else if roll < INVALID_PER_MILLE + MESSY_PER_MILLE {
            employee.full_name = format!("  {}  ", employee.full_name.replace(' ', "   "));
            employee.job_title = format!("{}\t", employee.job_title);
        }
        employee
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hr::clean::clean_and_validate;

    fn batch(seed: u64, locale: Locale) -> HireBatch {
        HireBatch {
            hire_date: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            seed,
            locale,
        }
    }

    #[test]
    fn the_same_coordinates_give_the_same_person() {
        let a = batch(42, Locale::EsEs);
        assert_eq!(a.employee(17), a.employee(17));
        assert_ne!(a.employee(17), a.employee(18));
        assert_ne!(a.employee(17), batch(43, Locale::EsEs).employee(17));
    }

    #[test]
    fn spanish_names_emails_and_noise_look_right() {
        let b = batch(1, Locale::EsEs);
        let interval = (b.hire_date, b.hire_date.succ_opt().unwrap());
        let rows: Vec<_> = (0..5000).map(|i| b.employee(i)).collect();
        let accented = rows
            .iter()
            .filter(|r| r.full_name.chars().any(|c| "áéíóúñÁÉÍÓÚÑ".contains(c)))
            .count();
        assert!(accented > 1000, "only {accented} accented names");
        let (good, bad): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .map(|r| clean_and_validate(r, interval))
            .partition(Result::is_ok);
        assert!((1..50).contains(&bad.len()), "{} rejects", bad.len());
        for e in good.into_iter().flatten() {
            assert!(
                e.email.is_ascii() && e.email.ends_with("@empresa.es"),
                "{}",
                e.email
            );
            assert!(!e.full_name.contains("  "));
        }
    }

    #[test]
    fn english_locale_uses_the_fake_crate() {
        let e = batch(1, Locale::En).employee(3);
        assert!(e.email.ends_with("@example.com"), "{}", e.email);
        assert!(e.full_name.is_ascii());
    }

    /// The batches every deployment has loaded: a change to generation, however harmless it
    /// looks, changes the rows a re-run of an old date writes.
    #[test]
    fn the_rows_are_pinned() {
        use sha2::{Digest, Sha256};
        for (locale, expected) in [
            (
                Locale::EsEs,
                "adda48bdb19dffc1774536eb4ae459deab9ff61b4307586b4ed269268720ae16",
            ),
            (
                Locale::En,
                "2be19dc08185e4ba63553496abf8d9045aa19dfe3d969e1197c7539e883932c6",
            ),
        ] {
            let b = batch(7, locale);
            let interval = (b.hire_date, b.hire_date.succ_opt().unwrap());
            let mut hash = Sha256::new();
            for i in 0..3000 {
                let raw = b.employee(i);
                hash.update(format!("{raw:?}\n").as_bytes());
                let cleaned = clean_and_validate(raw, interval);
                hash.update(format!("{cleaned:?}\n").as_bytes());
            }
            let digest: String = hash
                .finalize()
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            assert_eq!(digest, expected, "{locale}");
        }
    }

    #[test]
    fn ascii_folding() {
        assert_eq!(ascii_fold("Begoña Ibáñez-Güell"), "begona.ibanez.guell");
    }
}
