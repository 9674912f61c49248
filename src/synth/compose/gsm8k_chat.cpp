#include "synth/compose/gsm8k_chat.h"

#include <fmt/format.h>

#include "eval/answer_extract.h"
#include "eval/math_grader.h"
#include "io/jsonl.h"
#include "synth/compose/composer.h"
#include "synth/near_duplicates.h"
#include "util/error.h"

namespace pcm::synth::compose {

Gsm8kSolution convert_gsm8k_answer(const std::string& a, const std::string& where) {
  const size_t hash = a.rfind("####");
  PCM_CHECK(hash != std::string::npos, "{}: answer has no '#### N' line", where);
  Gsm8kSolution s;
  for (char c : a.substr(hash + 4))
    if (c != ',' && c != ' ' && c != '\n' && c != '\t') s.answer += c;
  PCM_CHECK(!s.answer.empty(), "{}: empty answer after '####'", where);
  std::string body = a.substr(0, hash);
  for (size_t i = 0; i < body.size();) {
    if (body.compare(i, 2, "<<") == 0) {
      const size_t end = body.find(">>", i + 2);
      PCM_CHECK(end != std::string::npos, "{}: unclosed '<<' calculator annotation", where);
      i = end + 2;
    } else {
      s.worked += body[i++];
    }
  }
  while (!s.worked.empty() && (s.worked.back() == '\n' || s.worked.back() == ' ')) s.worked.pop_back();
  return s;
}

std::vector<nlohmann::json> gsm8k_chat_rows(const std::string& path, const std::vector<std::string>& benchmark_files,
                                            Gsm8kChatStats* stats) {
  ContaminationIndex bench(5, 0.5);
  for (const auto& file : benchmark_files)
    for_each_jsonl(file, [&](const nlohmann::json& row, int64_t line) {
      for (const char* k : {"question", "problem", "prompt"})
        if (row.contains(k) && row[k].is_string()) {
          bench.add(fmt::format("{}:{}", file, line), row[k].get<std::string>());
          break;
        }
    });
  std::vector<nlohmann::json> out;
  for_each_jsonl(path, [&](const nlohmann::json& row, int64_t line) {
    const std::string where = fmt::format("{}:{}", path, line);
    PCM_CHECK(row.contains("question") && row["question"].is_string(), "{}: no string field 'question'", where);
    PCM_CHECK(row.contains("answer") && row["answer"].is_string(), "{}: no string field 'answer'", where);
    ++stats->rows;
    const std::string question = row["question"].get<std::string>();
    const Gsm8kSolution s = convert_gsm8k_answer(row["answer"].get<std::string>(), where);
    const std::string assistant = "<think>\n" + s.worked + "\n</think>\n\\boxed{" + s.answer + "}";
    const eval::Extraction ex = eval::extract_answer(assistant, false);
    if (!ex.found() || !eval::grade_math_answer(ex.answer, s.answer).correct) {
      ++stats->grader_rejected;
      return;
    }
    if (bench.size()) {
      const BenchmarkHit hit = bench.check(question);
      if (hit.index >= 0) {
        ++stats->contaminated;
        if (stats->contamination_examples.size() < 10)
          stats->contamination_examples.push_back(where + " ~ " + bench.source(hit.index));
        return;
      }
    }
    out.push_back({{"id", fmt::format("gsm8k-train-{}", line)},
                   {"problem", question},
                   {"answer", s.answer},
                   {"messages", nlohmann::json::array({{{"role", "user"}, {"content", math_user_prompt(question)}},
                                                       {{"role", "assistant"}, {"content", assistant}}})}});
    ++stats->kept;
  });
  return out;
}

}  // namespace pcm::synth::compose
