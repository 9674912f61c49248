#include "synth/compose/concept_bank.h"

#include <fmt/format.h>

#include <numeric>

#include "util/error.h"

namespace pcm::synth::compose {
namespace {

using P = std::optional<Part>;
using S = const std::string&;

// The value mentioned in a part's work: "A (= 56)" reads badly, so the work always shows the number.
std::string num(int64_t v) { return std::to_string(v); }

int64_t binom(int64_t n, int64_t k) {
  int64_t r = 1;
  for (int64_t i = 1; i <= k; ++i) r = r * (n - k + i) / i;  // exact: r * (n-k+i) is divisible by i
  return r;
}

int64_t divisor_count(int64_t x) {
  int64_t c = 0;
  for (int64_t d = 1; d * d <= x; ++d)
    if (x % d == 0) c += (d * d == x) ? 1 : 2;
  return c;
}

bool is_prime(int64_t x) {
  if (x < 2) return false;
  for (int64_t d = 2; d * d <= x; ++d)
    if (x % d == 0) return false;
  return true;
}

// A pick from a small list, uniformly.
template <class T>
T pick(std::mt19937_64& rng, std::initializer_list<T> items) {
  auto it = items.begin();
  std::advance(it, uniform_int(rng, 0, static_cast<int64_t>(items.size()) - 1));
  return *it;
}

// --- arithmetic ---------------------------------------------------------------------------------

P percent_of(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 4 || x > 1000000) return {};
  std::vector<int64_t> ok;
  for (int64_t p : {10, 20, 25, 30, 40, 50, 60, 75, 80, 90})
    if (x * p % 100 == 0) ok.push_back(p);
  if (ok.empty()) return {};
  const int64_t p = ok[uniform_int(rng, 0, static_cast<int64_t>(ok.size()) - 1)];
  const int64_t v = x * p / 100;
  return Part{fmt::format("A warehouse holds {} crates and ships {}% of them. Let {} be the number of crates shipped.", xt, p, n),
              fmt::format("take {}% of {}", p, xt),
              fmt::format("{} = {}% of {} = {} * {} / 100 = {}.", n, p, num(x), num(x), p, num(v)), {v}};
}

P rate_time(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 1 || x > 100000) return {};
  const int64_t t = uniform_int(rng, 2, 12);
  return Part{fmt::format("A machine makes {} parts per hour. Let {} be the number of parts it makes in {} hours.", xt, n, t),
              fmt::format("multiply the rate {} by the time {}", xt, t),
              fmt::format("{} = {} * {} = {}.", n, num(x), t, num(x * t)), {x * t}};
}

P fraction_of(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 2 || x > 1000000) return {};
  std::vector<std::pair<int64_t, int64_t>> ok;
  for (auto [a, b] : {std::pair<int64_t, int64_t>{1, 2}, {1, 3}, {2, 3}, {1, 4}, {3, 4}, {2, 5}, {3, 5}, {5, 6}, {3, 8}})
    if (x % b == 0) ok.emplace_back(a, b);
  if (ok.empty()) return {};
  auto [a, b] = ok[uniform_int(rng, 0, static_cast<int64_t>(ok.size()) - 1)];
  const int64_t v = x / b * a;
  return Part{fmt::format("A jar holds {} marbles, and {}/{} of them are red. Let {} be the number of red marbles.", xt, a, b, n),
              fmt::format("take {}/{} of {}", a, b, xt),
              fmt::format("{} = {} / {} * {} = {} * {} = {}.", n, num(x), b, a, num(x / b), a, num(v)), {v}};
}

P missing_mean(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 4 || x > 100000) return {};
  const int64_t a = uniform_int(rng, 1, x), b = uniform_int(rng, 1, x), c = uniform_int(rng, 1, x);
  const int64_t v = 4 * x - a - b - c;
  if (v < 1) return {};
  return Part{fmt::format("The mean of four numbers is {}. Three of them are {}, {} and {}. Let {} be the fourth number.", xt, a, b, c, n),
              fmt::format("multiply the mean {} by 4 and subtract the three known numbers", xt),
              fmt::format("The four numbers add up to 4 * {} = {}, so {} = {} - {} - {} - {} = {}.", num(x), num(4 * x), n,
                          num(4 * x), a, b, c, num(v)),
              {v}};
}

P ratio_split(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 3 || x > 1000000) return {};
  std::vector<std::pair<int64_t, int64_t>> ok;
  for (auto [a, b] : {std::pair<int64_t, int64_t>{1, 2}, {2, 3}, {3, 4}, {1, 3}, {3, 5}, {2, 5}, {4, 5}, {5, 7}})
    if (x % (a + b) == 0) ok.emplace_back(a, b);
  if (ok.empty()) return {};
  auto [a, b] = ok[uniform_int(rng, 0, static_cast<int64_t>(ok.size()) - 1)];
  const int64_t v = x / (a + b) * b;
  return Part{fmt::format("Two friends share {} dollars in the ratio {}:{}. Let {} be the larger share in dollars.", xt, a, b, n),
              fmt::format("split {} into {} + {} = {} equal parts and take {} of them", xt, a, b, a + b, b),
              fmt::format("One part is {} / {} = {}, so {} = {} * {} = {}.", num(x), a + b, num(x / (a + b)), n, b,
                          num(x / (a + b)), num(v)),
              {v}};
}

P discount(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 2 || x > 1000000) return {};
  std::vector<int64_t> ok;
  for (int64_t p : {10, 20, 25, 40, 50, 75})
    if (x * p % 100 == 0) ok.push_back(p);
  if (ok.empty()) return {};
  const int64_t p = ok[uniform_int(rng, 0, static_cast<int64_t>(ok.size()) - 1)];
  const int64_t off = x * p / 100;
  return Part{fmt::format("A jacket costs {} dollars and is on sale for {}% off. Let {} be the sale price in dollars.", xt, p, n),
              fmt::format("subtract {}% of {} from {}", p, xt, xt),
              fmt::format("The discount is {} * {} / 100 = {}, so {} = {} - {} = {}.", num(x), p, num(off), n, num(x), num(off),
                          num(x - off)),
              {x - off}};
}

P minutes_to_seconds(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 1 || x > 100000) return {};
  const bool hours = uniform_int(rng, 0, 1) == 1;
  const int64_t f = 60;
  return Part{fmt::format("A recording lasts {} {}. Let {} be its length in {}.", xt, hours ? "hours" : "minutes", n,
                          hours ? "minutes" : "seconds"),
              fmt::format("convert {} {} to {}", xt, hours ? "hours" : "minutes", hours ? "minutes" : "seconds"),
              fmt::format("Each {} has 60 {}, so {} = {} * 60 = {}.", hours ? "hour" : "minute", hours ? "minutes" : "seconds", n,
                          num(x), num(x * f)),
              {x * f}};
}

// --- number theory ------------------------------------------------------------------------------

P gcd_of(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 2 || x > 10000000) return {};
  const int64_t y = uniform_int(rng, 2, 30) * uniform_int(rng, 2, 12);
  const int64_t g = std::gcd(x, y);
  return Part{fmt::format("Let {} be the greatest common divisor of {} and {}.", n, xt, y),
              fmt::format("find gcd({}, {}) with the Euclidean algorithm", xt, y),
              fmt::format("{} = gcd({}, {}) = {}.", n, num(x), y, num(g)), {g}};
}

P lcm_of(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 2 || x > 10000) return {};
  const int64_t y = uniform_int(rng, 2, 15);
  const int64_t g = std::gcd(x, y), l = x / g * y;
  return Part{fmt::format("Let {} be the least common multiple of {} and {}.", n, xt, y),
              fmt::format("compute lcm({}, {}) = {} * {} / gcd", xt, y, xt, y),
              fmt::format("gcd({}, {}) = {}, so {} = {} * {} / {} = {}.", num(x), y, num(g), n, num(x), y, num(g), num(l)), {l}};
}

P remainder(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 1 || x > 10000000) return {};
  const int64_t m = uniform_int(rng, 5, 13);
  if (x < m) return {};
  const int64_t r = x % m;
  if (r == 0) return {};  // a zero would end most chains
  return Part{fmt::format("Let {} be the remainder when {} is divided by {}.", n, xt, m),
              fmt::format("reduce {} modulo {}", xt, m),
              fmt::format("{} = {} * {} + {}, so {} = {}.", num(x), m, num(x / m), num(r), n, num(r)), {r}};
}

P digit_sum(int64_t x, S xt, S n, std::mt19937_64&) {
  if (x < 10 || x > 100000000) return {};
  int64_t s = 0;
  std::string digits;
  for (char c : std::to_string(x)) {
    s += c - '0';
    digits += (digits.empty() ? "" : " + ") + std::string(1, c);
  }
  return Part{fmt::format("Let {} be the sum of the digits of {}.", n, xt), fmt::format("add the digits of {}", xt),
              fmt::format("{} = {} = {}.", n, digits, num(s)), {s}};
}

P divisors(int64_t x, S xt, S n, std::mt19937_64&) {
  if (x < 2 || x > 1000000) return {};
  const int64_t c = divisor_count(x);
  std::string fac;
  int64_t r = x;
  for (int64_t p = 2; p * p <= r; ++p) {
    int e = 0;
    while (r % p == 0) r /= p, ++e;
    if (e) fac += (fac.empty() ? "" : " * ") + (e == 1 ? std::to_string(p) : fmt::format("{}^{}", p, e));
  }
  if (r > 1) fac += (fac.empty() ? "" : " * ") + std::to_string(r);
  return Part{fmt::format("Let {} be the number of positive divisors of {}.", n, xt),
              fmt::format("factor {} into primes and multiply (exponent + 1) over the primes", xt),
              fmt::format("{} = {}, so {} = {}.", num(x), fac, n, num(c)), {c}};
}

P prime_count(int64_t x, S xt, S n, std::mt19937_64&) {
  if (x < 2 || x > 200) return {};
  int64_t c = 0;
  std::string list;
  for (int64_t p = 2; p <= x; ++p)
    if (is_prime(p)) ++c, list += (list.empty() ? "" : ", ") + std::to_string(p);
  if (c > 12) list = "the primes up to " + num(x);
  return Part{fmt::format("Let {} be the number of primes less than or equal to {}.", n, xt),
              fmt::format("count the primes up to {}", xt), fmt::format("The primes are {}; so {} = {}.", list, n, num(c)), {c}};
}

P last_digit_power(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 2 || x > 10000000) return {};
  const int64_t e = uniform_int(rng, 5, 40);
  int64_t d = 1;
  for (int64_t i = 0; i < e; ++i) d = d * (x % 10) % 10;
  if (d == 0) return {};
  return Part{fmt::format("Let {} be the last digit of {}^{}.", n, xt, e),
              fmt::format("follow the cycle of last digits of powers of {}", num(x % 10)),
              fmt::format("The last digit of {} is {}; the last digits of its powers repeat, and {}^{} ends in {}, so {} = {}.",
                          num(x), num(x % 10), num(x % 10), e, num(d), n, num(d)),
              {d}};
}

// --- combinatorics ------------------------------------------------------------------------------

P combinations(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 3 || x > 30) return {};
  const int64_t k = uniform_int(rng, 2, std::min<int64_t>(4, x - 1));
  const int64_t v = binom(x, k);
  std::string top, bottom;
  for (int64_t i = 0; i < k; ++i) {
    top += (i ? " * " : "") + num(x - i);
    bottom += (i ? " * " : "") + num(i + 1);
  }
  return Part{fmt::format("A club has {} members. Let {} be the number of ways to choose a committee of {} of them.", xt, n, k),
              fmt::format("count committees with C({}, {})", xt, k),
              fmt::format("{} = C({}, {}) = ({}) / ({}) = {}.", n, num(x), k, top, bottom, num(v)), {v}};
}

P arrangements(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 3 || x > 15) return {};
  const int64_t k = uniform_int(rng, 2, std::min<int64_t>(4, x));
  int64_t v = 1;
  std::string prod;
  for (int64_t i = 0; i < k; ++i) v *= x - i, prod += (i ? " * " : "") + num(x - i);
  return Part{fmt::format("Let {} be the number of ways to award gold, silver{} among {} runners{}.", n,
                          k == 2 ? "" : (k == 3 ? " and bronze medals" : ", bronze and a ribbon"), xt,
                          k == 2 ? " (gold and silver only)" : ""),
              fmt::format("count ordered selections of {} from {}", k, xt),
              fmt::format("{} = {} = {}.", n, prod, num(v)), {v}};
}

P handshakes(int64_t x, S xt, S n, std::mt19937_64&) {
  if (x < 2 || x > 2000) return {};
  const int64_t v = x * (x - 1) / 2;
  return Part{fmt::format("At a meeting of {} people, everyone shakes hands once with everyone else. Let {} be the number of handshakes.", xt, n),
              fmt::format("count pairs of people, {} * ({} - 1) / 2", xt, xt),
              fmt::format("{} = {} * {} / 2 = {}.", n, num(x), num(x - 1), num(v)), {v}};
}

P outfits(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 1 || x > 100000) return {};
  const int64_t y = uniform_int(rng, 2, 9);
  return Part{fmt::format("Sam owns {} shirts and {} pairs of trousers. Let {} be the number of different outfits of one shirt and one pair of trousers.", xt, y, n),
              fmt::format("multiply the choices, {} * {}", xt, y), fmt::format("{} = {} * {} = {}.", n, num(x), y, num(x * y)),
              {x * y}};
}

// --- algebra ------------------------------------------------------------------------------------

P linear_equation(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 1 || x > 10000000) return {};
  const int64_t a = uniform_int(rng, 2, 9);
  const int64_t c = a - (x % a == 0 ? a : x % a) + a * uniform_int(rng, 0, 3);  // (x + c) divisible by a, c >= 0
  if (c == 0) return {};
  const int64_t v = (x + c) / a;
  return Part{fmt::format("Let {} be the number that satisfies {}{} - {} = {}.", n, a, n, c, xt),
              fmt::format("add {} to both sides and divide by {}", c, a),
              fmt::format("{}{} = {} + {} = {}, so {} = {} / {} = {}.", a, n, num(x), c, num(x + c), n, num(x + c), a, num(v)), {v}};
}

P sum_difference(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 1 || x > 1000000) return {};
  const int64_t small = uniform_int(rng, 1, 50);
  const int64_t s = 2 * small + x;
  return Part{fmt::format("Two numbers add up to {} and differ by {}. Let {} be the larger number.", s, xt, n),
              fmt::format("the larger number is (sum + difference) / 2"),
              fmt::format("{} = ({} + {}) / 2 = {} / 2 = {}.", n, s, num(x), num(s + x), num(small + x)), {small + x}};
}

P quadratic_root(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 1 || x > 10000) return {};
  const int64_t s = uniform_int(rng, 1, 9);  // roots x + s and -s
  const int64_t r = x + s, c = r * s;
  return Part{fmt::format("Let {} be the positive solution of t^2 - {}t - {} = 0.", n, xt, c),
              fmt::format("factor the quadratic into (t - r)(t + s) with r - s = {} and r * s = {}", xt, c),
              fmt::format("t^2 - {}t - {} = (t - {})(t + {}), so {} = {}.", num(x), num(c), num(r), s, n, num(r)), {r}};
}

P arithmetic_series(int64_t x, S xt, S n, std::mt19937_64&) {
  if (x < 2 || x > 20000) return {};
  const int64_t v = x * (x + 1) / 2;
  return Part{fmt::format("Let {} be the sum 1 + 2 + ... + {}.", n, xt), fmt::format("use n(n + 1) / 2 with n = {}", xt),
              fmt::format("{} = {} * {} / 2 = {}.", n, num(x), num(x + 1), num(v)), {v}};
}

P nth_term(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 1 || x > 100000) return {};
  const int64_t a = uniform_int(rng, 1, 20), d = uniform_int(rng, 2, 9);
  const int64_t v = a + (x - 1) * d;
  return Part{fmt::format("An arithmetic sequence starts {}, {}, {}, ... Let {} be its term number {}.", a, a + d, a + 2 * d, n, xt),
              fmt::format("use a + (k - 1)d with a = {}, d = {}, k = {}", a, d, xt),
              fmt::format("{} = {} + ({} - 1) * {} = {}.", n, a, num(x), d, num(v)), {v}};
}

// --- geometry -----------------------------------------------------------------------------------

P rectangle_area(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 1 || x > 100000) return {};
  const int64_t w = uniform_int(rng, 2, 15);
  return Part{fmt::format("A rectangle is {} cm long and {} cm wide. Let {} be its area in square centimetres.", xt, w, n),
              fmt::format("multiply length {} by width {}", xt, w), fmt::format("{} = {} * {} = {}.", n, num(x), w, num(x * w)),
              {x * w}};
}

P rectangle_perimeter(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 1 || x > 100000) return {};
  const int64_t w = uniform_int(rng, 2, 30);
  const int64_t v = 2 * (x + w);
  return Part{fmt::format("A garden is a rectangle {} m long and {} m wide. Let {} be the length of fence around it in metres.", xt, w, n),
              fmt::format("the perimeter is 2 * (length + width)"),
              fmt::format("{} = 2 * ({} + {}) = {}.", n, num(x), w, num(v)), {v}};
}

P hypotenuse(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 1 || x > 100000) return {};
  auto [a, b, c] = pick(rng, {std::tuple<int64_t, int64_t, int64_t>{3, 4, 5}, {5, 12, 13}, {8, 15, 17}});
  return Part{fmt::format("A right triangle has legs {} * {} and {} * {}. Let {} be its hypotenuse.", a, xt, b, xt, n),
              fmt::format("scale the {}-{}-{} right triangle by {}", a, b, c, xt),
              fmt::format("The legs are {} and {}; sqrt({}^2 + {}^2) = {}, so {} = {} * {} = {}.", num(a * x), num(b * x), a, b, c, n,
                          c, num(x), num(c * x)),
              {c * x}};
}

// --- probability (a fraction: last part only) ---------------------------------------------------

P probability_red(int64_t x, S xt, S n, std::mt19937_64& rng) {
  if (x < 1 || x > 100000) return {};
  const int64_t y = uniform_int(rng, 1, 20);
  const int64_t g = std::gcd(x, x + y);
  return Part{fmt::format("A bag holds {} red balls and {} blue balls. Let {} be the probability that a ball drawn at random is red, as a fraction in lowest terms.", xt, y, n),
              fmt::format("divide the red count by the total"),
              fmt::format("{} = {} / ({} + {}) = {} / {} = {}/{}.", n, num(x), num(x), y, num(x), num(x + y), num(x / g),
                          num((x + y) / g)),
              {x / g, (x + y) / g}};
}

std::vector<Concept> make_bank() {
  using V = std::vector<std::string>;
  return {
      {"percent_of", "Percentages of a quantity", "arithmetic", V{"arithmetic", "percent", "multiplication", "money"}, V{"percent", "%"}, 20, 400, false, percent_of},
      {"rate_time", "Rates: amount = rate times time", "arithmetic", V{"arithmetic", "rate", "multiplication", "time"}, V{"per hour", "per day", "per minute", "each hour", "every hour"}, 3, 60, false, rate_time},
      {"fraction_of", "Fractions of a quantity", "arithmetic", V{"arithmetic", "fraction", "division"}, V{"half", "third", "quarter", "fraction"}, 12, 120, false, fraction_of},
      {"missing_mean", "Arithmetic mean and a missing value", "arithmetic", V{"arithmetic", "mean", "statistics", "addition"}, V{"average", "mean"}, 10, 90, false, missing_mean},
      {"ratio_split", "Dividing a quantity in a given ratio", "arithmetic", V{"arithmetic", "ratio", "division", "money"}, V{"ratio", "times as many", "twice as"}, 20, 300, false, ratio_split},
      {"discount", "Percent discount and sale price", "arithmetic", V{"arithmetic", "percent", "money", "subtraction"}, V{"discount", "sale", "off", "cost"}, 20, 400, false, discount},
      {"unit_conversion", "Converting units of time", "arithmetic", V{"arithmetic", "units", "time", "multiplication"}, V{"minutes", "hours", "seconds"}, 2, 30, false, minutes_to_seconds},
      {"gcd", "Greatest common divisor (Euclidean algorithm)", "number_theory", V{"number_theory", "divisibility", "gcd"}, V{"divisor", "divide evenly", "groups"}, 12, 400, false, gcd_of},
      {"lcm", "Least common multiple", "number_theory", V{"number_theory", "divisibility", "multiples"}, V{"multiple", "every", "both"}, 4, 40, false, lcm_of},
      {"remainder", "Division with remainder (modular arithmetic)", "number_theory", V{"number_theory", "modular", "division"}, V{"remainder", "left over", "leftover"}, 20, 500, false, remainder},
      {"digit_sum", "Sum of the decimal digits of an integer", "number_theory", V{"number_theory", "digits", "addition"}, V{"digit", "digits"}, 100, 9999, false, digit_sum},
      {"divisor_count", "Counting divisors from the prime factorisation", "number_theory", V{"number_theory", "divisibility", "primes", "counting"}, V{"factor", "divisor"}, 12, 500, false, divisors},
      {"prime_count", "Prime numbers up to a bound", "number_theory", V{"number_theory", "primes", "counting"}, V{"prime"}, 10, 100, false, prime_count},
      {"last_digit_power", "Last digit of a power (cyclicity mod 10)", "number_theory", V{"number_theory", "modular", "powers", "digits"}, V{"power", "squared", "cubed"}, 2, 99, false, last_digit_power},
      {"combinations", "Combinations: choosing k of n", "combinatorics", V{"combinatorics", "counting", "binomial"}, V{"choose", "committee", "team", "pairs"}, 5, 15, false, combinations},
      {"arrangements", "Permutations: ordered selections", "combinatorics", V{"combinatorics", "counting", "order"}, V{"order", "arrange", "line up", "first", "second"}, 4, 10, false, arrangements},
      {"handshakes", "Counting pairs: n(n - 1)/2", "combinatorics", V{"combinatorics", "counting", "pairs", "binomial"}, V{"each other", "every other", "handshake", "pairs"}, 4, 40, false, handshakes},
      {"outfits", "Multiplication principle of counting", "combinatorics", V{"combinatorics", "counting", "multiplication"}, V{"different", "combinations", "outfits", "options"}, 2, 12, false, outfits},
      {"linear_equation", "Solving a linear equation in one unknown", "algebra", V{"algebra", "equations", "division"}, V{"more than", "less than"}, 5, 200, false, linear_equation},
      {"sum_difference", "Two numbers from their sum and difference", "algebra", V{"algebra", "equations", "system"}, V{"more than", "older", "difference", "together"}, 2, 60, false, sum_difference},
      {"quadratic_root", "Solving a quadratic equation by factoring", "algebra", V{"algebra", "equations", "quadratic", "factoring"}, V{"square", "squared", "area"}, 2, 30, false, quadratic_root},
      {"arithmetic_series", "Sum of the first n positive integers", "algebra", V{"algebra", "sequences", "series", "addition"}, V{"every day", "consecutive", "in a row"}, 5, 100, false, arithmetic_series},
      {"nth_term", "Terms of an arithmetic sequence", "algebra", V{"algebra", "sequences", "multiplication"}, V{"each week", "each day", "more each", "increase"}, 5, 60, false, nth_term},
      {"rectangle_area", "Area of a rectangle", "geometry", V{"geometry", "area", "multiplication"}, V{"area", "square feet", "square meters", "square"}, 3, 40, false, rectangle_area},
      {"rectangle_perimeter", "Perimeter of a rectangle", "geometry", V{"geometry", "perimeter", "addition"}, V{"perimeter", "fence", "around"}, 3, 60, false, rectangle_perimeter},
      {"hypotenuse", "Pythagorean theorem and scaled right triangles", "geometry", V{"geometry", "triangles", "squares", "pythagorean"}, V{"triangle", "diagonal"}, 1, 12, false, hypotenuse},
      {"probability_red", "Probability of an event with equally likely outcomes", "probability", V{"probability", "fraction", "counting", "division"}, V{"chance", "probability", "random"}, 1, 30, true, probability_red},
  };
}

}  // namespace

std::string Value::latex() const {
  return den == 1 ? std::to_string(num) : fmt::format("\\frac{{{}}}{{{}}}", num, den);
}

int64_t uniform_int(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  PCM_CHECK(lo <= hi, "uniform_int: empty range [{}, {}]", lo, hi);
  const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
  return lo + static_cast<int64_t>(rng() % span);  // span is tiny next to 2^64: the bias is negligible
}

const std::vector<Concept>& concept_bank() {
  static const std::vector<Concept> bank = make_bank();
  return bank;
}

const Concept& concept_by_name(const std::string& name) {
  for (const auto& c : concept_bank())
    if (c.name == name) return c;
  fail("unknown concept '{}'", name);
}

}  // namespace pcm::synth::compose
