//! Rendering in both languages, the examples the messages must match, and load errors.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};

use super::*;

/// 09:04 on 23/11/2026 in Asia/Ho_Chi_Minh.
fn at(hour_utc: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, hour_utc, minute, 0)
        .unwrap()
}

fn cam_tu(notice: Notice) -> NoticeView {
    NoticeView {
        notice,
        alert: 7,
        kind: AlertKind::LinkDown,
        agent: "th-camtu-ubnd".into(),
        site: Some("UBND xã Cẩm Tú".into()),
        commune: Some("xã Cẩm Tú".into()),
        province: Some("Thanh Hóa".into()),
        link: None,
        detected_by: Detection::LastWill,
        since: at(2, 4),
        until: None,
        duration_ms: None,
        value: None,
        threshold: None,
        affected: vec![
            "thôn Giang Trung".into(),
            "thôn Trung Sơn".into(),
            "thôn Tú Tạo".into(),
        ],
        acknowledged_by: None,
    }
}

fn resolved(notice: Notice) -> NoticeView {
    NoticeView {
        until: Some(at(2, 36)),
        duration_ms: Some(32 * 60_000),
        ..cam_tu(notice)
    }
}

#[test]
fn vietnamese_down_message() {
    let (subject, text) = render(&Templates::builtin(), "vi", &[cam_tu(Notice::Opened)]);
    assert_eq!(subject, "🔴 Cảnh báo: Mất kết nối — UBND xã Cẩm Tú");
    assert_eq!(
        text,
        "🔴 MẤT KẾT NỐI — UBND xã Cẩm Tú (xã Cẩm Tú, Thanh Hóa)\n\
         Từ 09:04 23/11/2026 · phát hiện: mất kết nối MQTT (last will)\n\
         Ảnh hưởng 3 điểm: thôn Giang Trung, thôn Trung Sơn, thôn Tú Tạo"
    );
}

#[test]
fn vietnamese_recovery_and_late_messages() {
    let templates = Templates::builtin();
    let (subject, text) = render(&templates, "vi", &[resolved(Notice::Resolved)]);
    assert_eq!(subject, "🟢 Đã khôi phục: Mất kết nối — UBND xã Cẩm Tú");
    assert_eq!(
        text,
        "🟢 ĐÃ KHÔI PHỤC — UBND xã Cẩm Tú: mất kết nối 32 phút (09:04–09:36 23/11/2026)"
    );
    let (subject, text) = render(&templates, "vi", &[resolved(Notice::ResolvedLate)]);
    assert_eq!(
        subject,
        "🟢 Đã khôi phục (báo muộn): Mất kết nối — UBND xã Cẩm Tú"
    );
    assert_eq!(
        text,
        "🟢 UBND xã Cẩm Tú (xã Cẩm Tú, Thanh Hóa): mất kết nối 32 phút\n\
         Đã khôi phục — sự cố 09:04–09:36 23/11/2026, báo muộn"
    );
}

#[test]
fn english_by_configuration() {
    let templates = Templates::builtin();
    let (subject, text) = render(&templates, "en", &[cam_tu(Notice::Opened)]);
    assert_eq!(subject, "🔴 Alert: Link down — UBND xã Cẩm Tú");
    assert_eq!(
        text,
        "🔴 LINK DOWN — UBND xã Cẩm Tú (xã Cẩm Tú, Thanh Hóa)\n\
         Since 09:04 23/11/2026 · detected by: MQTT connection lost (last will)\n\
         Affects 3 sites: thôn Giang Trung, thôn Trung Sơn, thôn Tú Tạo"
    );
    let long = NoticeView {
        duration_ms: Some(65 * 60_000 + 12_000),
        until: Some(at(3, 9)),
        ..resolved(Notice::Resolved)
    };
    let (_, text) = render(&templates, "en", &[long]);
    assert_eq!(
        text,
        "🟢 RECOVERED — UBND xã Cẩm Tú: link down for 1 h 5 min (09:04–10:09 23/11/2026)"
    );
}

#[test]
fn empty_parts_read_naturally() {
    let templates = Templates::builtin();
    let bare = NoticeView {
        site: None,
        commune: None,
        province: None,
        affected: vec![],
        kind: AlertKind::HighLoss,
        detected_by: Detection::Statistics,
        link: Some("UBND xã Cẩm Tú (10.20.0.1)".into()),
        value: Some(35.0),
        threshold: Some(20.5),
        ..cam_tu(Notice::Opened)
    };
    let (subject, text) = render(&templates, "vi", &[bare]);
    assert_eq!(subject, "🔴 Cảnh báo: Mất gói cao — th-camtu-ubnd");
    assert_eq!(
        text,
        "🔴 MẤT GÓI CAO — th-camtu-ubnd\n\
         Đường truyền: UBND xã Cẩm Tú (10.20.0.1)\n\
         Từ 09:04 23/11/2026 · phát hiện: thống kê các vòng đo\n\
         Đo được 35% (ngưỡng 20,5%)"
    );
    assert!(!text.contains("Ảnh hưởng"), "{text}");
}

#[test]
fn durations_periods_and_units() {
    let templates = Templates::builtin();
    let unit = |lang: &'static str| {
        let language = &templates.languages[lang];
        move |ms| duration(ms, &|u| phrase(language, &format!("duration.{u}")).into())
    };
    let (vi, en) = (unit("vi"), unit("en"));
    assert_eq!(vi(32_000), "32 giây");
    assert_eq!(en(32_999), "32 s");
    assert_eq!(vi(65 * 60_000), "1 giờ 5 phút");
    assert_eq!(vi(2 * 3_600_000), "2 giờ");
    assert_eq!(vi(27 * 3_600_000 + 60_000), "1 ngày 3 giờ");
    assert_eq!(en(27 * 3_600_000), "1 d 3 h");
    // 23:50 local on the 22nd to 00:10 on the 23rd.
    let since = Utc.with_ymd_and_hms(2026, 11, 22, 16, 50, 0).unwrap();
    assert_eq!(
        period(since, at(17, 10) - chrono::TimeDelta::days(1)),
        "23:50 22/11/2026–00:10 23/11/2026"
    );
    assert_eq!(measure(AlertKind::Congestion, 3.24, ","), "3,2×");
    assert_eq!(measure(AlertKind::HighLatency, 250.0, "."), "250 ms");
    assert_eq!(measure(AlertKind::HighLatency, f64::NAN, "."), "? ms");
}

#[test]
fn grouped_messages_and_unknown_languages() {
    let templates = Templates::builtin();
    let village = NoticeView {
        alert: 8,
        site: Some("thôn Giang Trung".into()),
        affected: vec![],
        ..cam_tu(Notice::Opened)
    };
    let notices = [cam_tu(Notice::Opened), village, resolved(Notice::Resolved)];
    let (subject, text) = render(&templates, "vi", &notices);
    assert_eq!(
        subject,
        "netmon: 3 thông báo · 2 cảnh báo mới · 1 đã khôi phục — UBND xã Cẩm Tú, thôn Giang Trung"
    );
    assert_eq!(text.matches("\n\n").count(), 2, "{text}");
    assert!(text.contains("🔴 MẤT KẾT NỐI — thôn Giang Trung"), "{text}");
    assert_eq!(
        render(&templates, "fr", &notices),
        render(&templates, "vi", &notices)
    );
    assert!(templates.has_language("en") && !templates.has_language("fr"));
}

fn copy_builtin(dir: &Path, lang: &str) {
    let target = dir.join(lang);
    std::fs::create_dir_all(&target).unwrap();
    let texts = BUILTIN.iter().find(|(l, _)| *l == lang).unwrap().1;
    for (file, text) in FILES.iter().zip(texts) {
        std::fs::write(target.join(file), text).unwrap();
    }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("netmon-templates-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_province_edits_its_templates() {
    let dir = scratch();
    copy_builtin(&dir, "vi");
    std::fs::write(
        dir.join("vi/opened.txt"),
        "⚠️ {site} — {kind} từ {since}\n[Gọi anh Tuấn: {acknowledged_by}]\n",
    )
    .unwrap();
    let templates = Templates::load(&dir).unwrap();
    let (_, text) = render(&templates, "vi", &[cam_tu(Notice::Opened)]);
    assert_eq!(text, "⚠️ UBND xã Cẩm Tú — Mất kết nối từ 09:04 23/11/2026");
    // English keeps the built-in templates.
    let (_, text) = render(&templates, "en", &[cam_tu(Notice::Opened)]);
    assert!(text.starts_with("🔴 LINK DOWN"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn load_errors_name_the_file_and_the_placeholder() {
    let dir = scratch();
    copy_builtin(&dir, "vi");
    std::fs::write(
        dir.join("vi/resolved.txt"),
        "ok {site}\n{thon} đã có mạng\n",
    )
    .unwrap();
    let e = Templates::load(&dir).unwrap_err();
    assert_eq!(e.file, dir.join("vi/resolved.txt"));
    assert!(
        e.to_string()
            .contains("resolved.txt: line 2: unknown placeholder {thon}"),
        "{e}"
    );

    std::fs::remove_file(dir.join("vi/resolved.txt")).unwrap();
    let e = Templates::load(&dir).unwrap_err();
    assert_eq!(e.file, dir.join("vi/resolved.txt"));
    assert!(e.problem.contains("missing"), "{e}");

    copy_builtin(&dir, "vi");
    let phrases = dir.join("vi/phrases.txt");
    let text = std::fs::read_to_string(&phrases).unwrap();
    std::fs::write(&phrases, text.replace("kind.flapping = Chập chờn\n", "")).unwrap();
    let e = Templates::load(&dir).unwrap_err();
    assert!(
        e.to_string()
            .contains("phrases.txt: missing key kind.flapping"),
        "{e}"
    );

    let empty = scratch();
    let e = Templates::load(&empty).unwrap_err();
    assert!(e.problem.contains("no language directory"), "{e}");
    let e = Templates::load(&empty.join("nope")).unwrap_err();
    assert!(e.problem.contains("cannot read"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(empty).unwrap();
}

/// A modem at thôn Giang Trung off 5G since 08:15 (on 4G), or without service at all.
fn giang_trung(notice: Notice, lost_5g: bool) -> NoticeView {
    NoticeView {
        notice,
        alert: 9,
        kind: AlertKind::CoverageLost,
        agent: "th-camtu-giangtrung".into(),
        site: Some("thôn Giang Trung".into()),
        link: Some(if lost_5g {
            "modem viettel (Viettel) · 5G".into()
        } else {
            "modem viettel (Viettel)".into()
        }),
        detected_by: Detection::AgentProbes,
        since: at(1, 15),
        value: lost_5g.then_some(4.0),
        threshold: lost_5g.then_some(5.0),
        affected: vec![],
        ..cam_tu(notice)
    }
}

#[test]
fn coverage_messages_in_vietnamese() {
    let templates = Templates::builtin();
    let (subject, text) = render(&templates, "vi", &[giang_trung(Notice::Opened, true)]);
    assert_eq!(subject, "🔴 Cảnh báo: Mất sóng 5G — thôn Giang Trung");
    assert_eq!(
        text,
        "🔴 MẤT SÓNG 5G — thôn Giang Trung (xã Cẩm Tú, Thanh Hóa)\n\
         Đường truyền: modem viettel (Viettel) · 5G\n\
         Từ 08:15 23/11/2026 · phát hiện: modem báo trạng thái mạng (đăng ký, công nghệ)\n\
         Đo được 4G (ngưỡng 5G)"
    );
    let (subject, text) = render(&templates, "vi", &[giang_trung(Notice::Opened, false)]);
    assert_eq!(
        subject,
        "🔴 Cảnh báo: Mất sóng di động hoàn toàn — thôn Giang Trung"
    );
    assert_eq!(
        text,
        "🔴 MẤT SÓNG DI ĐỘNG HOÀN TOÀN — thôn Giang Trung (xã Cẩm Tú, Thanh Hóa)\n\
         Đường truyền: modem viettel (Viettel)\n\
         Từ 08:15 23/11/2026 · phát hiện: modem báo trạng thái mạng (đăng ký, công nghệ)"
    );
    let back = NoticeView {
        until: Some(at(1, 50)),
        duration_ms: Some(35 * 60_000),
        ..giang_trung(Notice::Resolved, false)
    };
    let (_, text) = render(&templates, "vi", &[back]);
    assert_eq!(
        text,
        "🟢 ĐÃ KHÔI PHỤC — thôn Giang Trung: mất sóng di động hoàn toàn 35 phút \
         (08:15–08:50 23/11/2026)\n\
         Đường truyền: modem viettel (Viettel)"
    );
}

#[test]
fn coverage_messages_in_english() {
    let templates = Templates::builtin();
    let (subject, text) = render(&templates, "en", &[giang_trung(Notice::Opened, true)]);
    assert_eq!(subject, "🔴 Alert: 5G lost — thôn Giang Trung");
    assert_eq!(
        text,
        "🔴 5G LOST — thôn Giang Trung (xã Cẩm Tú, Thanh Hóa)\n\
         Link: modem viettel (Viettel) · 5G\n\
         Since 08:15 23/11/2026 · detected by: the modem's own readings (registration, technology)\n\
         Measured 4G (threshold 5G)"
    );
    let back = NoticeView {
        until: Some(at(1, 50)),
        duration_ms: Some(35 * 60_000),
        ..giang_trung(Notice::Resolved, true)
    };
    let (subject, text) = render(&templates, "en", &[back]);
    assert_eq!(subject, "🟢 Recovered: 5G lost — thôn Giang Trung");
    assert_eq!(
        text,
        "🟢 RECOVERED — thôn Giang Trung: 5G lost for 35 min (08:15–08:50 23/11/2026)\n\
         Link: modem viettel (Viettel) · 5G"
    );
    let (subject, _) = render(&templates, "en", &[giang_trung(Notice::Opened, false)]);
    assert_eq!(
        subject,
        "🔴 Alert: No cellular service at all — thôn Giang Trung"
    );
}
