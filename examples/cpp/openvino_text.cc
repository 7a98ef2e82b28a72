// Text in, vectors out, in C++: sentencepiece tokenizes, OpenVINO runs the ONNX artifact.
//
//   openvino_text ARTIFACT_DIR            tokenize reference/text.txt's text, run, compare
//                                         ids and outputs with Keras's; exit 1 on mismatch
//   openvino_text ARTIFACT_DIR "any text" print the ids and the first output values
//
// Reads ARTIFACT_DIR/tokenizer/vocabulary.spm and ARTIFACT_DIR/onnx/<graph>.onnx, the
// graph, its input names and the framing ([CLS] ... [SEP] for DeBERTa, ... </s> for T5)
// named in reference/text.txt.
#include <sentencepiece_processor.h>

#include <iostream>
#include <openvino/openvino.hpp>

#include "reference.h"
#include "tokenize.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " ARTIFACT_DIR [TEXT]\n";
    return 2;
  }
  const std::string dir = argv[1];
  Reference ref;
  try {
    ref = read_reference(dir + "/reference/text.txt");
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << " (export a model with a tokenizer)\n";
    return 2;
  }
  const bool checking = argc < 3;
  const std::string text = checking ? ref.text : argv[2];

  sentencepiece::SentencePieceProcessor tokenizer;
  std::vector<int32_t> ids;
  try {
    load_tokenizer(tokenizer, dir);
    ids = framed_ids(tokenizer, ref, text);
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 2;
  }
  std::vector<int32_t> mask(ids.size(), 1);

  std::cout << "ids:";
  for (int32_t id : ids) std::cout << " " << id;
  std::cout << "\n";
  bool ok = true;
  if (checking && ref.inputs.at(ref.ids_input).ints != ids) {
    std::cout << "token ids differ from keras_hub's: MISMATCH\n";
    ok = false;
  }

  ov::Core core;
  ov::CompiledModel compiled;
  ov::InferRequest request;
  try {
    // OpenVINO reads .onnx directly; f32 pinned (its CPU default may be bf16).
    compiled = core.compile_model(dir + "/onnx/" + ref.graph + ".onnx", "CPU",
                                  ov::hint::inference_precision(ov::element::f32));
    request = compiled.create_infer_request();
    const ov::Shape shape{1, ids.size()};
    request.set_tensor(ref.ids_input, ov::Tensor(ov::element::i32, shape, ids.data()));
    request.set_tensor(ref.mask_input, ov::Tensor(ov::element::i32, shape, mask.data()));
    request.infer();
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 2;
  }
  for (const auto& output : compiled.outputs()) {
    const std::string name = output.get_any_name();
    ov::Tensor tensor = request.get_tensor(output);
    const float* data = tensor.data<float>();
    std::vector<float> got(data, data + tensor.get_size());
    print_first_values(name + " " + tensor.get_shape().to_string(), got);
    if (checking && ref.outputs.count(name)) ok = within_bounds(ref, name, got) && ok;
  }
  return ok ? 0 : 1;
}
