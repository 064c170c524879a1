using Lockstep.Backends.Torch;
using Lockstep.Backends.Torch.Tests;
using Lockstep.Conformance.Onnx;
using Xunit.Abstractions;

namespace Lockstep.Tests;

/// <summary>The ONNX peer corpus on libtorch.</summary>
public sealed class TorchOnnxCorpus(ITestOutputHelper output) : OnnxCorpus(new TorchBackendFactory().Create(TorchTestSupport.Options), output);
