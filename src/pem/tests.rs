use super::*;

const CERT: &str = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";

#[test]
fn empty_and_text_only_inputs_have_no_blocks() {
    assert!(parse(b"").unwrap().is_empty());
    assert!(parse(b"just some text\nand more").unwrap().is_empty());
}

#[test]
fn crlf_trailing_whitespace_and_no_final_newline() {
    let text = "-----BEGIN CERTIFICATE-----  \r\nMA \tA=\t\r\n-----END CERTIFICATE-----";
    let b = parse(text.as_bytes()).unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].der, [0x30, 0]);
    assert_eq!(b[0].text, text.as_bytes());
    assert_eq!((b[0].begin_line, b[0].end_line), (1, 3));
}

#[test]
fn spans_and_lines_with_text_between() {
    let text = format!("intro\n{CERT}middle\n\n{CERT}tail");
    let b = parse(text.as_bytes()).unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!((b[0].begin_line, b[0].end_line, b[0].index), (2, 4, 0));
    assert_eq!((b[1].begin_line, b[1].end_line, b[1].index), (7, 9, 1));
    assert_eq!(b[0].text, CERT.as_bytes());
    assert_eq!(b[1].text, CERT.as_bytes());
    assert_eq!(&text.as_bytes()[b[1].span.clone()], CERT.as_bytes());
}

#[test]
fn errors_name_their_lines() {
    let e = parse(b"x\n-----BEGIN CERTIFICATE-----\nMAA=\n").unwrap_err();
    assert_eq!(
        e,
        PemError::MissingEnd {
            label: "CERTIFICATE".into(),
            block: 0,
            line: 2
        }
    );

    let e = parse(format!("-----BEGIN CERTIFICATE-----\nMAA=\n{CERT}").as_bytes()).unwrap_err();
    assert!(
        matches!(
            e,
            PemError::NestedBegin {
                line: 3,
                open_line: 1,
                block: 0,
                ..
            }
        ),
        "{e:?}"
    );

    let e = parse(b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END PRIVATE KEY-----\n").unwrap_err();
    assert!(
        matches!(
            e,
            PemError::LabelMismatch {
                line: 3,
                begin_line: 1,
                ..
            }
        ),
        "{e:?}"
    );

    let e =
        parse(b"-----BEGIN CERTIFICATE-----\nAAAA\nMA*A\n-----END CERTIFICATE-----\n").unwrap_err();
    assert_eq!(
        e,
        PemError::BadBase64 {
            label: "CERTIFICATE".into(),
            block: 0,
            ch: '*',
            line: 3,
            column: 3
        }
    );

    // Data after padding is refused at the first character that follows it.
    let e =
        parse(b"-----BEGIN CERTIFICATE-----\nMAA=\nMAAA\n-----END CERTIFICATE-----\n").unwrap_err();
    assert!(
        matches!(
            e,
            PemError::BadBase64 {
                line: 3,
                column: 1,
                ch: 'M',
                ..
            }
        ),
        "{e:?}"
    );

    let e = parse(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n").unwrap_err();
    assert!(matches!(e, PemError::EmptyBody { line: 1, .. }));

    let e = parse(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap_err();
    assert!(matches!(e, PemError::BadDer { line: 1, .. }), "{e:?}");

    let e = parse(b"-----END CERTIFICATE-----\n").unwrap_err();
    assert!(matches!(e, PemError::EndWithoutBegin { line: 1, .. }));

    let e = parse(format!("{CERT}  {CERT}").as_bytes()).unwrap_err();
    assert_eq!(e, PemError::IndentedBoundary { line: 4 });

    let e = parse(b"-----BEGIN CERTIFICATE\nMAA=\n").unwrap_err();
    assert!(matches!(e, PemError::MalformedBoundary { line: 1, .. }));

    let e = parse(b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nMAA=\n-----END RSA PRIVATE KEY-----\n")
        .unwrap_err();
    assert!(
        matches!(e, PemError::Headers { line: 2, ref header, .. } if header == "Proc-Type"),
        "{e:?}"
    );

    let e = parse(b"-----BEGIN CERTIFICATE-----\nMAA\n-----END CERTIFICATE-----\n").unwrap_err();
    assert!(matches!(e, PemError::BadBase64Length { line: 3, .. }));
}

#[test]
fn labels_are_classified() {
    let text = "-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n";
    let b = parse(text.as_bytes()).unwrap();
    assert_eq!(b[0].label, Label::Other("X509 CRL".into()));
    assert_eq!(b[1].label, Label::EcPrivateKey);
    assert!(b[1].label.is_private_key());
    assert!(!format!("{:?}", b[1]).contains("MAA"));
}

#[test]
fn iterator_stops_after_an_error() {
    let text = format!("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n{CERT}");
    let mut it = blocks(text.as_bytes());
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none());
}
