// Small number helpers shared by the reports: ratios as text, JSON numbers
// that may be missing, medians.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace pageio::bench {

// "1.23x", or "-" for a ratio that is not a finite number.
std::string times(double ratio);

// The number, or JSON null when it is not finite (not measured).
nlohmann::json number_or_null(double v);

// The median of the finite values of `v` (the mean of the middle two for an
// even count); NaN when there are none.
double median_of(std::vector<double> v);

}  // namespace pageio::bench
