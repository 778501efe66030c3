//! Deterministic fake employees: the same (logical date, seed, index) always gives the same
//! person, so a retried or re-run load reproduces exactly the rows it had.

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

/// ASCII for e-mail addresses: "Begoña Ibáñez" → "begona.ibanez".
fn ascii_fold(text: &str) -> String {
    text.chars()
        .filter_map(|c| {
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
                _ => return None,
            };
            Some(folded)
        })
        .collect()
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
                format!(
                    "{} {}",
                    pick(&mut rng, es_es::LAST_NAMES),
                    pick(&mut rng, es_es::LAST_NAMES)
                ),
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
        // Emails come from the generated name (the fake crate's SafeEmail does not).
        let email = format!(
            "{}.{}{}@{domain}",
            ascii_fold(&first),
            ascii_fold(&last),
            index % 1000
        );
        let mut employee = RawEmployee {
            index: index as i32,
            full_name: format!("{first} {last}"),
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

    #[test]
    fn ascii_folding() {
        assert_eq!(ascii_fold("Begoña Ibáñez-Güell"), "begona.ibanez.guell");
    }
}
