//! The spellings a spreadsheet may use for the CSV import's column headers and site kinds: the
//! inventory's own English names, and a few common Vietnamese ones ("mã tỉnh", "tên thôn",
//! "vĩ độ", "thôn", "tổ dân phố", "UBND", …). Matching ignores case and surrounding spaces.

/// The canonical column name of a header cell (English names, or a few Vietnamese ones).
pub fn canonical(header: &str) -> Option<&'static str> {
    let h = header.trim().to_lowercase().replace(' ', "_");
    Some(match h.as_str() {
        "province_id" | "mã_tỉnh" => "province_id",
        "province_name" | "province" | "tỉnh" | "tên_tỉnh" => "province_name",
        "commune_id" | "mã_xã" => "commune_id",
        "commune_name" | "commune" | "xã" | "tên_xã" => "commune_name",
        "site_id" | "mã_trạm" | "mã_thôn" | "mã_điểm" => "site_id",
        "site_name" | "site" | "tên_thôn" | "tên_trạm" | "tên_điểm" | "thôn" => {
            "site_name"
        }
        "kind" | "loại" => "kind",
        "parent" | "trạm_cha" | "điểm_cha" => "parent",
        "lat" | "latitude" | "vĩ_độ" => "lat",
        "lon" | "lng" | "longitude" | "kinh_độ" => "lon",
        "agents" | "agent" | "mã_agent" => "agents",
        "contacts" | "liên_hệ" => "contacts",
        "province_contacts" | "liên_hệ_tỉnh" => "province_contacts",
        "commune_contacts" | "liên_hệ_xã" => "commune_contacts",
        "id" | "mã" => "id",
        "name" | "tên" | "họ_tên" => "name",
        "channel" | "kênh" => "channel",
        "to" | "địa_chỉ" | "gửi_đến" => "to",
        "lang" | "language" | "ngôn_ngữ" => "lang",
        _ => return None,
    })
}

/// A site kind in the inventory's spelling or a common Vietnamese one.
pub fn site_kind(text: &str) -> Option<&'static str> {
    let t = text.trim().to_lowercase();
    Some(match t.as_str() {
        "village" | "thôn" | "bản" | "ấp" | "làng" | "xóm" => "village",
        "residential_group" | "tổ dân phố" | "tdp" | "khu phố" => "residential_group",
        "commune_centre" | "ubnd" | "ubnd xã" | "ubnd phường" | "trụ sở ubnd" => {
            "commune_centre"
        }
        "public_service_centre" | "trung tâm phục vụ hành chính công" | "tt phvhcc" => {
            "public_service_centre"
        }
        "other" | "khác" => "other",
        _ => return None,
    })
}
