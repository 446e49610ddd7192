//! `#[derive(ArrowEnum)]`: a fieldless enum travels as its variant name in a
//! `dictionary<int16, utf8>`, as Python enums do (by member *name*).
//!
//! Attributes:
//! - container `#[arrow(crate = "path")]`: path of the wire crate
//!   (default `::vgirpc::wire`);
//! - container `#[arrow(rename_all = "...")]`: one of
//!   `SCREAMING_SNAKE_CASE`, `snake_case`, `lowercase`, `UPPERCASE`;
//! - variant `#[arrow(rename = "NAME")]`: name on the wire, taking
//!   precedence over `rename_all`.

use std::collections::HashSet;

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr};

use crate::derive_struct::{default_crate_path, each_arrow_attr, parse_crate_path};

#[derive(Clone, Copy)]
enum RenameAll {
    ScreamingSnake,
    Snake,
    Lower,
    Upper,
}

impl RenameAll {
    fn parse(lit: &LitStr) -> syn::Result<Self> {
        Ok(match lit.value().as_str() {
            "SCREAMING_SNAKE_CASE" => Self::ScreamingSnake,
            "snake_case" => Self::Snake,
            "lowercase" => Self::Lower,
            "UPPERCASE" => Self::Upper,
            other => {
                return Err(syn::Error::new(
                    lit.span(),
                    format!(
                        "unsupported rename_all {other:?}; expected \"SCREAMING_SNAKE_CASE\", \
                         \"snake_case\", \"lowercase\" or \"UPPERCASE\""
                    ),
                ));
            }
        })
    }

    fn apply(self, ident: &str) -> String {
        match self {
            Self::ScreamingSnake => words(ident).join("_").to_uppercase(),
            Self::Snake => words(ident).join("_").to_lowercase(),
            Self::Lower => ident.to_lowercase(),
            Self::Upper => ident.to_uppercase(),
        }
    }
}

/// Splits an identifier into words at underscores and case changes, keeping
/// acronyms together: `HttpServer`, `HTTPServer` and `http_server` all give
/// `http` + `server` (in their original case).
fn words(ident: &str) -> Vec<String> {
    let chars: Vec<char> = ident.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        let starts_word = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(char::is_lowercase))
            });
        if starts_word && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

pub(crate) fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let mut krate = default_crate_path();
    let mut rename_all = None;
    each_arrow_attr(&input.attrs, |meta| {
        if meta.path.is_ident("crate") {
            krate = parse_crate_path(meta)?;
            Ok(())
        } else if meta.path.is_ident("rename_all") {
            let lit: LitStr = meta.value()?.parse()?;
            rename_all = Some(RenameAll::parse(&lit)?);
            Ok(())
        } else {
            Err(meta
                .error("unknown #[arrow] attribute on an enum; expected `crate` or `rename_all`"))
        }
    })?;

    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new(
            input.ident.span(),
            "ArrowEnum needs an enum whose variants have no fields",
        ));
    };

    let mut idents = Vec::new();
    let mut names = Vec::new();
    let mut seen = HashSet::new();
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            return Err(syn::Error::new(
                variant.fields.span(),
                "ArrowEnum variants cannot have fields",
            ));
        }
        let ident = variant.ident.to_string();
        let ident = ident.strip_prefix("r#").unwrap_or(&ident).to_owned();
        let mut name = match rename_all {
            Some(rule) => rule.apply(&ident),
            None => ident,
        };
        each_arrow_attr(&variant.attrs, |meta| {
            if meta.path.is_ident("rename") {
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value().is_empty() {
                    return Err(syn::Error::new(lit.span(), "wire name must not be empty"));
                }
                name = lit.value();
                Ok(())
            } else {
                Err(meta.error("unknown #[arrow] attribute on a variant; expected `rename`"))
            }
        })?;
        if !seen.insert(name.clone()) {
            return Err(syn::Error::new(
                variant.span(),
                format!("duplicate wire name {name:?}"),
            ));
        }
        idents.push(&variant.ident);
        names.push(name);
    }

    let name = &input.ident;
    let name_str = name.to_string();
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let private = quote!(#krate::types::__private);
    let value = quote!(#krate::value::Value);
    let result = quote!(#krate::Result);

    let to_name = if idents.is_empty() {
        quote!(match *self {})
    } else {
        quote!(match self { #(Self::#idents => #names,)* })
    };

    Ok(quote! {
        impl #impl_generics #krate::types::ArrowValue for #name #ty_generics #where_clause {
            fn arrow_type() -> #private::DataType {
                #private::enum_type()
            }

            fn to_value(&self) -> #value {
                let name: &'static str = #to_name;
                #value::Str(<::std::string::String as ::core::convert::From<&str>>::from(name))
            }

            fn from_value(value: #value) -> #result<Self> {
                let name = #private::enum_name(value, #name_str)?;
                match name.as_str() {
                    #(#names => ::std::result::Result::Ok(Self::#idents),)*
                    _ => ::std::result::Result::Err(#private::unknown_variant(#name_str, name)),
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_rules() {
        let cases = [
            ("Pending", "PENDING", "pending"),
            ("PendingReview", "PENDING_REVIEW", "pending_review"),
            ("HTTPServer", "HTTP_SERVER", "http_server"),
            ("HttpServer2Go", "HTTP_SERVER2_GO", "http_server2_go"),
            ("ACTIVE", "ACTIVE", "active"),
            ("already_snake", "ALREADY_SNAKE", "already_snake"),
        ];
        for (ident, screaming, snake) in cases {
            assert_eq!(RenameAll::ScreamingSnake.apply(ident), screaming, "{ident}");
            assert_eq!(RenameAll::Snake.apply(ident), snake, "{ident}");
        }
        assert_eq!(RenameAll::Lower.apply("PendingReview"), "pendingreview");
        assert_eq!(RenameAll::Upper.apply("PendingReview"), "PENDINGREVIEW");
    }
}
