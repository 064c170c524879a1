using System.Buffers.Binary;
using System.Text.Json;
using Lockstep.Conformance.Reference;
using Lockstep.Layers;
using Lockstep.Training;

namespace Lockstep.Tests;

public sealed class TrainingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lockstep-training-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Two fake digits per class: the class's own pattern of lit pixels, values in [0, 1].</summary>
    private static LabelledImages FakeDigits(int perClass = 2)
    {
        int n = 10 * perClass;
        var pixels = new double[n * 784];
        var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            labels[i] = i % 10;
            for (int p = 0; p < 784; p++) pixels[i * 784 + p] = (p % 10 == labels[i] ? 0.5 : 0) + 0.001 * ((i + p) % 7);
        }
        return new LabelledImages(pixels, labels, 1, 28, 28);
    }

    [Fact]
    public void MnistDigits_LoadsThePackagesFormat()
    {
        File.WriteAllText(Path.Combine(_dir, "0.json"), "{ \"data\": [" + string.Join(",", Enumerable.Repeat("0.25", 784 * 2)) + "] }");
        for (int d = 1; d < 10; d++) File.WriteAllText(Path.Combine(_dir, $"{d}.json"), "{ \"data\": [" + string.Join(",", Enumerable.Range(0, 784).Select(p => p == d ? "1" : "0")) + "] }");
        var digits = MnistDigits.Load(_dir);
        Assert.Equal(11, digits.Count);
        Assert.Equal([0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9], digits.Labels);
        Assert.Equal(0.25, digits.Pixels[784 * 2 - 1]);
        Assert.Equal(1.0, digits.Pixels[784 * 2 + 1]);   // the first '1': pixel 1 lit
    }

    [Fact]
    public void MnistDigits_SaveThenLoad_RoundTrips()
    {
        var fake = FakeDigits();
        MnistDigits.Save(fake, _dir);
        var loaded = MnistDigits.Load(_dir);
        var expected = fake.Select(Enumerable.Range(0, fake.Count).OrderBy(i => fake.Labels[i]).ToArray());   // digit by digit
        Assert.Equal(expected.Labels, loaded.Labels);
        Assert.Equal(expected.Pixels, loaded.Pixels);
    }

    [Fact]
    public void MnistDigits_ThrowsForAPartialImage()
    {
        for (int d = 0; d < 10; d++) File.WriteAllText(Path.Combine(_dir, $"{d}.json"), "{ \"data\": [0, 0.5] }");
        var e = Assert.Throws<InvalidDataException>(() => MnistDigits.Load(_dir));
        Assert.Contains("not a whole number of 28×28 images", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Split_IsDisjointAndDeterministic()
    {
        var fake = FakeDigits(perClass: 5);
        var (train, test) = fake.Split(35, 15, seed: 3);
        var (again, _) = fake.Split(35, 15, seed: 3);
        Assert.Equal(train.Pixels, again.Pixels);
        Assert.Equal(50, train.Count + test.Count);
        Assert.Throws<ArgumentException>(() => fake.Split(40, 11, seed: 3));
    }

    [Fact]
    public void Order_IsAPermutation_FixedBySeedAndEpoch()
    {
        var a = Trainer.Order(100, seed: 1, epoch: 1);
        Assert.Equal(Enumerable.Range(0, 100), a.Order());
        Assert.Equal(a, Trainer.Order(100, seed: 1, epoch: 1));
        Assert.NotEqual(a, Trainer.Order(100, seed: 1, epoch: 2));
        Assert.NotEqual(a, Trainer.Order(100, seed: 2, epoch: 1));
        Assert.Equal([64, 36], Trainer.Batches(a, 64).Select(b => b.Length));
    }

    [Fact]
    public void Epoch_LearnsFakeDigits()
    {
        using var backend = new NaiveBackend();
        using var net = NetworkSpec.Parse("INPUT 28x28x1 -> FC-10").Build(backend, DType.Float64, seed: 1);
        var data = FakeDigits();
        var sgd = new SgdSettings(LearningRate: 0.05, Momentum: 0.9, WeightDecay: 1e-4, Batch: 8, Seed: 2);
        var first = Trainer.Epoch(net, data, sgd, 1);
        EpochResult last = first;
        for (int e = 2; e <= 15; e++) last = Trainer.Epoch(net, data, sgd, e);
        Assert.True(last.Loss < 0.2 * first.Loss, $"loss went from {first.Loss} to {last.Loss}");
        Assert.Equal(1.0, Trainer.Accuracy(net, data));
    }

    [Fact]
    public void Step_ThrowsAtANonFiniteLoss()
    {
        using var backend = new NaiveBackend();
        using var net = NetworkSpec.Parse("INPUT 28x28x1 -> FC-10").Build(backend, DType.Float64, seed: 1);
        var data = FakeDigits();
        var e = Assert.Throws<TrainingDivergedException>(() =>
        {
            for (int i = 0; i < 50; i++) Trainer.Epoch(net, data, new SgdSettings(LearningRate: 1e10, WeightDecay: 1, Batch: 20), i + 1);
        });
        Assert.Contains("diverged", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SafeTensors_RoundTrips_AndTheHeaderFollowsTheSpecification()
    {
        using var backend = new NaiveBackend();
        using var net = NamedNetworks.LeNet().Build(backend, DType.Float32, seed: 4);
        string path = Path.Combine(_dir, "lenet.safetensors");
        SafeTensors.Save(net, path);

        // The format: u64 little-endian header length N; N bytes of JSON (padded with spaces to 8); then the data.
        var bytes = File.ReadAllBytes(path);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, n % 8);
        var header = JsonDocument.Parse(bytes.AsMemory(8, (int)n)).RootElement;
        long expectedOffset = 0;
        foreach (var p in net.Parameters)
        {
            var entry = header.GetProperty(p.Name);   // PyTorch's names: conv1.weight, fc3.bias
            Assert.Equal("F32", entry.GetProperty("dtype").GetString());
            Assert.Equal(p.Shape.Dims, entry.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()));
            var offsets = entry.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            Assert.Equal([expectedOffset, expectedOffset + p.Shape.Count * 4], offsets);   // in order, no gaps
            // The data, little-endian, at 8 + N + begin.
            float first = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(8 + (int)n + (int)offsets[0]));
            Assert.Equal((float)p.Value.ToDoubles()[0], first);
            expectedOffset = offsets[1];
        }
        Assert.Equal(8 + (long)n + expectedOffset, bytes.Length);

        using var other = NamedNetworks.LeNet().Build(backend, DType.Float32, seed: 5);
        SafeTensors.Load(other, path);
        for (int i = 0; i < net.Parameters.Count; i++) Assert.Equal(net.Parameters[i].Value.ToDoubles(), other.Parameters[i].Value.ToDoubles());
    }

    [Fact]
    public void SafeTensors_Float64_RoundTripsExactly()
    {
        var tensors = new[] { new NamedTensor("w", DType.Float64, new Shape(2, 2), [Math.PI, -0.0, 1e-300, double.MaxValue]) };
        using var stream = new MemoryStream();
        SafeTensors.Write(stream, tensors);
        stream.Position = 0;
        var read = SafeTensors.Read(stream);
        Assert.Equal("w", read[0].Name);
        Assert.Equal(DType.Float64, read[0].DType);
        Assert.Equal(tensors[0].Values, read[0].Values);
    }

    [Fact]
    public void SafeTensors_Load_ThrowsForAShapeMismatch()
    {
        using var backend = new NaiveBackend();
        using var cifar = NamedNetworks.Cifar().Build(backend, DType.Float32, seed: 1);
        using var lenet = NamedNetworks.LeNet().Build(backend, DType.Float32, seed: 1);
        string path = Path.Combine(_dir, "cifar.safetensors");
        SafeTensors.Save(cifar, path);
        var e = Assert.Throws<ArgumentException>(() => SafeTensors.Load(lenet, path));
        Assert.Contains("conv1.weight", e.Message, StringComparison.Ordinal);
    }
}
