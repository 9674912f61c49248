// Post-processors for single sequences: TemplateProcessing (its "single" template), RobertaProcessing
// and BertProcessing (cls $A sep), ByteLevel (ids unchanged) and Sequence. With
// add_special_tokens=false every one of them leaves the ids as they are.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/json.h"

namespace pcm {

class PostProcessor {
 public:
  // One element of the output: the sequence itself, or fixed (special-token) ids.
  struct Item {
    bool is_sequence;
    std::vector<int32_t> ids;
  };

  // Builds it from a tokenizer.json "post_processor" object; `where` names the file and field.
  static PostProcessor from_json(const json& spec, const std::string& where);
  // A plain template: [bos] $A [eos] (an id < 0 is left out).
  static PostProcessor bos_eos(int32_t bos, int32_t eos);

  void apply(std::vector<int32_t>& ids) const;
  // The special-token id placed before / after the sequence by the single template, or -1.
  int32_t bos_id() const;
  int32_t eos_id() const;

 private:
  std::vector<Item> items_;  // empty: identity
  bool identity_ = true;
};

}  // namespace pcm
