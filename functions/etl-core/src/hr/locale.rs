//! Locales for generated employees. `es_ES` is the seed's default; the `fake` crate ships no
//! Spanish locale, so its words live here (accents included: the cleaning and CSV stages
//! must carry them intact). `en` uses the `fake` crate's own English data.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    EsEs,
    En,
}

impl Locale {
    pub const SUPPORTED: &'static [&'static str] = &["es_ES", "en"];
}

impl FromStr for Locale {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "es_ES" | "es-ES" => Ok(Locale::EsEs),
            "en" | "en_US" | "en-US" => Ok(Locale::En),
            other => Err(format!(
                "unknown locale {other:?}; supported: {}",
                Locale::SUPPORTED.join(", ")
            )),
        }
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Locale::EsEs => "es_ES",
            Locale::En => "en",
        })
    }
}

impl Serialize for Locale {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Locale {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

pub mod es_es {
    pub const FIRST_NAMES: &[&str] = &[
        "José",
        "María",
        "Antonio",
        "Carmen",
        "Manuel",
        "Josefa",
        "Francisco",
        "Ana",
        "David",
        "Isabel",
        "Juan",
        "Laura",
        "Javier",
        "Lucía",
        "Daniel",
        "Cristina",
        "Ángel",
        "Marta",
        "Jesús",
        "Dolores",
        "Alejandro",
        "Pilar",
        "Miguel",
        "Paula",
        "Rafael",
        "Raquel",
        "Pablo",
        "Sara",
        "Sergio",
        "Elena",
        "Fernando",
        "Beatriz",
        "Jorge",
        "Nuria",
        "Luis",
        "Rocío",
        "Alberto",
        "Inés",
        "Álvaro",
        "Begoña",
        "Raúl",
        "Mónica",
        "Óscar",
        "Andrea",
        "Íñigo",
        "Irene",
        "Adrián",
        "Sofía",
        "Iván",
        "Julia",
        "Rubén",
        "Noelia",
        "Joaquín",
        "Aitana",
        "Ramón",
        "Encarnación",
        "Víctor",
        "Estíbaliz",
        "Tomás",
        "Amparo",
        "Martín",
        "Ainhoa",
        "Nicolás",
        "Mercè",
        "Sebastián",
        "Núria",
        "Jordi",
        "Montserrat",
        "Xavier",
        "Àngels",
        "Joël",
        "Zoë",
        "Agustín",
        "Concepción",
        "Germán",
        "Asunción",
        "Héctor",
        "Belén",
    ];

    pub const LAST_NAMES: &[&str] = &[
        "García",
        "Fernández",
        "González",
        "Rodríguez",
        "López",
        "Martínez",
        "Sánchez",
        "Pérez",
        "Gómez",
        "Martín",
        "Jiménez",
        "Ruiz",
        "Hernández",
        "Díaz",
        "Moreno",
        "Muñoz",
        "Álvarez",
        "Romero",
        "Alonso",
        "Gutiérrez",
        "Navarro",
        "Torres",
        "Domínguez",
        "Vázquez",
        "Ramos",
        "Gil",
        "Ramírez",
        "Serrano",
        "Blanco",
        "Molina",
        "Morales",
        "Suárez",
        "Ortega",
        "Delgado",
        "Castro",
        "Ortiz",
        "Rubio",
        "Marín",
        "Sanz",
        "Núñez",
        "Iglesias",
        "Medina",
        "Garrido",
        "Cortés",
        "Castillo",
        "Santos",
        "Lozano",
        "Guerrero",
        "Cano",
        "Prieto",
        "Méndez",
        "Cruz",
        "Calvo",
        "Gallego",
        "Vidal",
        "León",
        "Márquez",
        "Herrera",
        "Peña",
        "Flores",
        "Cabrera",
        "Campos",
        "Vega",
        "Fuentes",
        "Carrasco",
        "Díez",
        "Caballero",
        "Reyes",
        "Nieto",
        "Aguilar",
        "Pascual",
        "Santana",
        "Herrero",
        "Lorenzo",
        "Montero",
        "Hidalgo",
        "Giménez",
        "Ibáñez",
        "Ferrer",
        "Durán",
        "Santiago",
        "Benítez",
        "Mora",
        "Vicente",
        "Vargas",
        "Arias",
        "Carmona",
        "Crespo",
        "Román",
        "Pastor",
        "Soto",
        "Sáez",
        "Velasco",
        "Moya",
        "Soler",
        "Parra",
        "Esteban",
        "Bravo",
        "Gallardo",
        "Rojas",
        "de la Fuente",
        "del Río",
        "Peñalver",
        "Echeverría",
        "Goikoetxea",
        "Etxeberria",
        "Puigdemont",
        "Llorente",
        "Güell",
        "Argüelles",
    ];

    pub const JOB_TITLES: &[&str] = &[
        "Ingeniero de software",
        "Ingeniera de datos",
        "Analista de datos",
        "Contable",
        "Técnico de mantenimiento",
        "Jefe de ventas",
        "Diseñadora gráfica",
        "Recepcionista",
        "Abogado laboralista",
        "Enfermera",
        "Administrativo",
        "Director financiero",
        "Responsable de logística",
        "Comercial",
        "Programador sénior",
        "Arquitecta de soluciones",
        "Técnica de recursos humanos",
        "Gestor de proyectos",
        "Auxiliar administrativo",
        "Especialista en ciberseguridad",
        "Consultor SAP",
        "Community manager",
        "Mozo de almacén",
        "Jefa de producto",
        "Analista financiero",
        "Técnico de soporte",
        "Operario de producción",
        "Responsable de compras",
        "Directora de marketing",
        "Científico de datos",
        "Coordinadora de atención al cliente",
        "Ingeniero de calidad",
        "Técnico superior en prevención de riesgos laborales y medio ambiente",
    ];

    pub const DEPARTMENTS: &[&str] = &[
        "Ventas",
        "Marketing",
        "Finanzas",
        "Recursos Humanos",
        "Tecnología",
        "Operaciones",
        "Logística",
        "Atención al Cliente",
        "Legal",
        "Compras",
        "I+D",
    ];

    pub const EMAIL_DOMAIN: &str = "empresa.es";
}

pub mod en {
    pub const DEPARTMENTS: &[&str] = &[
        "Sales",
        "Marketing",
        "Finance",
        "Human Resources",
        "Technology",
        "Operations",
        "Logistics",
        "Customer Service",
        "Legal",
        "Purchasing",
        "R&D",
    ];

    pub const EMAIL_DOMAIN: &str = "example.com";
}
