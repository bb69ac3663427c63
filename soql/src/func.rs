//! The functions SOQL knows, their documented spelling and their kind.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Func {
    Avg,
    Count,
    CountDistinct,
    Min,
    Max,
    Sum,
    Grouping,
    CalendarMonth,
    CalendarQuarter,
    CalendarYear,
    DayInMonth,
    DayInWeek,
    DayInYear,
    DayOnly,
    FiscalMonth,
    FiscalQuarter,
    FiscalYear,
    HourInDay,
    WeekInMonth,
    WeekInYear,
    ToLabel,
    ConvertCurrency,
    Format,
    ConvertTimezone,
    Distance,
    Geolocation,
}

/// What a function is, which decides where it may appear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FuncKind {
    Aggregate,
    Date,
    Other,
}

impl Func {
    pub const ALL: [Func; 26] = [
        Func::Avg,
        Func::Count,
        Func::CountDistinct,
        Func::Min,
        Func::Max,
        Func::Sum,
        Func::Grouping,
        Func::CalendarMonth,
        Func::CalendarQuarter,
        Func::CalendarYear,
        Func::DayInMonth,
        Func::DayInWeek,
        Func::DayInYear,
        Func::DayOnly,
        Func::FiscalMonth,
        Func::FiscalQuarter,
        Func::FiscalYear,
        Func::HourInDay,
        Func::WeekInMonth,
        Func::WeekInYear,
        Func::ToLabel,
        Func::ConvertCurrency,
        Func::Format,
        Func::ConvertTimezone,
        Func::Distance,
        Func::Geolocation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Func::Avg => "AVG",
            Func::Count => "COUNT",
            Func::CountDistinct => "COUNT_DISTINCT",
            Func::Min => "MIN",
            Func::Max => "MAX",
            Func::Sum => "SUM",
            Func::Grouping => "GROUPING",
            Func::CalendarMonth => "CALENDAR_MONTH",
            Func::CalendarQuarter => "CALENDAR_QUARTER",
            Func::CalendarYear => "CALENDAR_YEAR",
            Func::DayInMonth => "DAY_IN_MONTH",
            Func::DayInWeek => "DAY_IN_WEEK",
            Func::DayInYear => "DAY_IN_YEAR",
            Func::DayOnly => "DAY_ONLY",
            Func::FiscalMonth => "FISCAL_MONTH",
            Func::FiscalQuarter => "FISCAL_QUARTER",
            Func::FiscalYear => "FISCAL_YEAR",
            Func::HourInDay => "HOUR_IN_DAY",
            Func::WeekInMonth => "WEEK_IN_MONTH",
            Func::WeekInYear => "WEEK_IN_YEAR",
            Func::ToLabel => "toLabel",
            Func::ConvertCurrency => "convertCurrency",
            Func::Format => "FORMAT",
            Func::ConvertTimezone => "convertTimezone",
            Func::Distance => "DISTANCE",
            Func::Geolocation => "GEOLOCATION",
        }
    }

    pub fn from_name(name: &str) -> Option<Func> {
        Func::ALL
            .iter()
            .copied()
            .find(|f| f.as_str().eq_ignore_ascii_case(name))
    }

    pub fn kind(self) -> FuncKind {
        match self {
            Func::Avg
            | Func::Count
            | Func::CountDistinct
            | Func::Min
            | Func::Max
            | Func::Sum
            | Func::Grouping => FuncKind::Aggregate,
            Func::CalendarMonth
            | Func::CalendarQuarter
            | Func::CalendarYear
            | Func::DayInMonth
            | Func::DayInWeek
            | Func::DayInYear
            | Func::DayOnly
            | Func::FiscalMonth
            | Func::FiscalQuarter
            | Func::FiscalYear
            | Func::HourInDay
            | Func::WeekInMonth
            | Func::WeekInYear => FuncKind::Date,
            _ => FuncKind::Other,
        }
    }
}
