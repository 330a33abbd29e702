//! The macro behind the two registries, [`SourceConfig`](crate::sources::SourceConfig) and
//! [`SinkConfig`](crate::sinks::SinkConfig): from one line per kind it writes the config
//! enum (serde-tagged by `kind`), the closed kind enum with [`ALL`] and `as_str`, `kind()`,
//! and the one `match` that dispatches `build` to the kind's config. Nothing else lists the
//! kinds, so nothing can drift from the enum.
//!
//! [`ALL`]: crate::sources::SourceKind::ALL

/// See the module docs. Each kind line is
/// `/// doc` `Variant(path::Config) = "name",` where `name` is the `kind = "..."` of configs.
macro_rules! registry {
    (
        $(#[$config_meta:meta])*
        config $Config:ident;
        $(#[$kind_meta:meta])*
        kind $Kind:ident;
        build $Build:ident($Context:ty) -> $Built:ty;
        kinds {
            $(
                $(#[$variant_meta:meta])*
                $Variant:ident($Inner:ty) = $name:literal,
            )+
        }
    ) => {
        $(#[$config_meta])*
        #[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
        #[serde(tag = "kind")]
        pub enum $Config {
            $(
                $(#[$variant_meta])*
                #[serde(rename = $name)]
                $Variant($Inner),
            )+
        }

        $(#[$kind_meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $Kind {
            $(
                $(#[$variant_meta])*
                $Variant,
            )+
        }

        impl $Kind {
            /// Every kind, in the order of the registry (and of serde's "expected one of").
            pub const ALL: &'static [$Kind] = &[$($Kind::$Variant),+];

            /// The name used in configs (`kind = "..."`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($Kind::$Variant => $name,)+
                }
            }

            /// Every kind's name, for "expected one of ..." messages.
            pub fn names() -> Vec<&'static str> {
                Self::ALL.iter().map(|k| k.as_str()).collect()
            }
        }

        impl std::fmt::Display for $Kind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $Config {
            /// The config's kind.
            pub fn kind(&self) -> $Kind {
                match self {
                    $($Config::$Variant(_) => $Kind::$Variant,)+
                }
            }
        }

        impl $Build for $Config {
            fn build(&self, cx: &$Context) -> Result<$Built, $crate::error::ConnectorError> {
                match self {
                    $($Config::$Variant(c) => $Build::build(c, cx),)+
                }
            }
        }
    };
}

pub(crate) use registry;
