//! `#[derive(ArrowStruct)]`: a struct with named fields (or a unit struct,
//! which has none) becomes an Arrow `struct` when nested and an IPC stream in
//! a `binary` column at the top level.
//!
//! Attributes:
//! - container `#[arrow(crate = "path")]`: path of the wire crate
//!   (default `::vgirpc::wire`);
//! - field `#[arrow(rename = "name")]`: name on the wire;
//! - field `#[arrow(nullable = false)]` / `true`: override the declared
//!   nullability (the Python reference declares `Annotated[T | None,
//!   ArrowType(...)]` fields non-nullable while still writing nulls).

use std::collections::HashSet;

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, GenericParam, LitBool, LitStr, Path};

/// Runs `handle` on every `key = value` item of every `#[arrow(...)]`
/// attribute in `attrs`.
pub(crate) fn each_arrow_attr(
    attrs: &[Attribute],
    mut handle: impl FnMut(&syn::meta::ParseNestedMeta<'_>) -> syn::Result<()>,
) -> syn::Result<()> {
    for attr in attrs.iter().filter(|a| a.path().is_ident("arrow")) {
        attr.parse_nested_meta(|meta| handle(&meta))?;
    }
    Ok(())
}

/// The wire crate path from `#[arrow(crate = "...")]`, if given.
pub(crate) fn parse_crate_path(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Path> {
    let lit: LitStr = meta.value()?.parse()?;
    lit.parse::<Path>()
        .map_err(|e| syn::Error::new(lit.span(), format!("invalid crate path: {e}")))
}

/// The default path of the wire crate, as re-exported by `vgirpc`.
pub(crate) fn default_crate_path() -> Path {
    syn::parse_quote!(::vgirpc::wire)
}

struct FieldSpec {
    ident: syn::Ident,
    ty: syn::Type,
    wire_name: String,
    nullable: Option<bool>,
}

pub(crate) fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let mut krate = default_crate_path();
    each_arrow_attr(&input.attrs, |meta| {
        if meta.path.is_ident("crate") {
            krate = parse_crate_path(meta)?;
            Ok(())
        } else {
            Err(meta.error("unknown #[arrow] attribute on a struct; expected `crate`"))
        }
    })?;

    let named: Vec<&syn::Field> = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => named.named.iter().collect(),
            // A unit struct is a struct without fields: stateless stream
            // states carry nothing, like the reference's field-less dataclasses.
            Fields::Unit => Vec::new(),
            other => {
                return Err(syn::Error::new(
                    other.span(),
                    "ArrowStruct needs a struct with named fields (or a unit struct)",
                ));
            }
        },
        Data::Enum(data) => {
            return Err(syn::Error::new(
                data.enum_token.span,
                "ArrowStruct needs a struct; derive ArrowEnum for fieldless enums",
            ));
        }
        Data::Union(data) => {
            return Err(syn::Error::new(
                data.union_token.span,
                "ArrowStruct needs a struct with named fields",
            ));
        }
    };

    let mut fields = Vec::new();
    let mut seen = HashSet::new();
    for field in named {
        let Some(ident) = field.ident.clone() else {
            continue;
        };
        let mut wire_name = ident.to_string();
        wire_name = wire_name
            .strip_prefix("r#")
            .map(str::to_owned)
            .unwrap_or(wire_name);
        let mut nullable = None;
        each_arrow_attr(&field.attrs, |meta| {
            if meta.path.is_ident("rename") {
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value().is_empty() {
                    return Err(syn::Error::new(lit.span(), "wire name must not be empty"));
                }
                wire_name = lit.value();
                Ok(())
            } else if meta.path.is_ident("nullable") {
                let lit: LitBool = meta.value()?.parse()?;
                nullable = Some(lit.value);
                Ok(())
            } else {
                Err(meta.error(
                    "unknown #[arrow] attribute on a field; expected `rename` or `nullable`",
                ))
            }
        })?;
        if !seen.insert(wire_name.clone()) {
            return Err(syn::Error::new(
                field.span(),
                format!("duplicate wire name {wire_name:?}"),
            ));
        }
        fields.push(FieldSpec {
            ident,
            ty: field.ty.clone(),
            wire_name,
            nullable,
        });
    }

    let name = &input.ident;
    let name_str = name.to_string();
    let mut generics = input.generics.clone();
    for param in &mut generics.params {
        if let GenericParam::Type(ty) = param {
            ty.bounds.push(syn::parse_quote!(#krate::types::ArrowValue));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();

    let private = quote!(#krate::types::__private);
    let value = quote!(#krate::value::Value);
    let arrow_value = quote!(#krate::types::ArrowValue);
    let result = quote!(#krate::Result);

    let field_types = fields.iter().map(|f| {
        let FieldSpec {
            ty,
            wire_name,
            nullable,
            ..
        } = f;
        let nullable = match nullable {
            Some(explicit) => quote!(#explicit),
            None => quote!(<#ty as #arrow_value>::nullable()),
        };
        quote! {
            #private::Field::new(#wire_name, <#ty as #arrow_value>::arrow_type(), #nullable)
        }
    });
    let to_values = fields.iter().map(|f| {
        let FieldSpec {
            ident, wire_name, ..
        } = f;
        quote! {
            (<::std::string::String as ::core::convert::From<&str>>::from(#wire_name), #arrow_value::to_value(&self.#ident))
        }
    });
    let try_to_values = fields.iter().map(|f| {
        let FieldSpec {
            ident, wire_name, ..
        } = f;
        quote! {
            (<::std::string::String as ::core::convert::From<&str>>::from(#wire_name), #arrow_value::try_to_value(&self.#ident)?)
        }
    });
    let takes = fields.iter().map(|f| {
        let FieldSpec {
            ident,
            ty,
            wire_name,
            ..
        } = f;
        quote!(#ident: children.take::<#ty>(#wire_name)?)
    });

    Ok(quote! {
        impl #impl_generics #arrow_value for #name #ty_generics #where_clause {
            fn arrow_type() -> #private::DataType {
                let fields: ::std::vec::Vec<#private::Field> = ::std::vec![#(#field_types),*];
                #private::DataType::Struct(<#private::Fields as ::core::convert::From<::std::vec::Vec<#private::Field>>>::from(fields))
            }

            fn to_value(&self) -> #value {
                #value::Struct(::std::vec![#(#to_values),*])
            }

            fn try_to_value(&self) -> #result<#value> {
                ::std::result::Result::Ok(#value::Struct(::std::vec![#(#try_to_values),*]))
            }

            fn from_value(value: #value) -> #result<Self> {
                #[allow(unused_mut, unused_variables)]
                let mut children = #private::StructValue::new(value, #name_str)?;
                ::std::result::Result::Ok(Self { #(#takes),* })
            }

            fn column_type() -> #private::DataType {
                #private::DataType::Binary
            }

            fn to_column_value(&self) -> #value {
                #arrow_value::try_to_column_value(self).unwrap_or(#value::Null)
            }

            fn try_to_column_value(&self) -> #result<#value> {
                #private::struct_column_value(self)
            }

            fn from_column_value(value: #value) -> #result<Self> {
                #private::struct_from_column_value(value, #name_str)
            }
        }

        impl #impl_generics #krate::types::ArrowStruct for #name #ty_generics #where_clause {}
    })
}
