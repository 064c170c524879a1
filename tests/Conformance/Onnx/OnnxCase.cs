using System.Buffers.Binary;
using System.Text.Json;

namespace Lockstep.Conformance.Onnx;

/// <summary>One input or output of an ONNX case: its shape, dtype (float32, or int64 for MaxPool's Indices) and raw file.</summary>
public sealed record OnnxTensorInfo(string Name, int Index, int[] Dims, string DType, string File)
{
    public long Count => Dims.Aggregate(1L, (a, d) => a * d);

    public string ShapeText => "[" + string.Join(",", Dims) + "]";
}

/// <summary>
/// One case of the ONNX peer corpus (../shared/conformance/onnx, format in its README.md): a single node, its
/// attributes (absent ones take ONNX's defaults), its inputs and the outputs ONNX's own generators expect.
/// </summary>
public sealed class OnnxCase
{
    private readonly JsonElement _attributes;

    private OnnxCase(string directory, JsonElement root)
    {
        Directory = directory;
        Folder = root.GetProperty("folder").GetString()!;
        Op = root.GetProperty("op").GetString()!;
        Opset = root.GetProperty("opset").GetInt32();
        _attributes = root.GetProperty("attributes").Clone();
        Inputs = Tensors(root, "inputs");
        Outputs = Tensors(root, "outputs");
    }

    public string Directory { get; }
    public string Folder { get; }
    public string Op { get; }
    public int Opset { get; }
    public IReadOnlyList<OnnxTensorInfo> Inputs { get; }
    public IReadOnlyList<OnnxTensorInfo> Outputs { get; }

    public static OnnxCase Load(string corpus, string folder)
    {
        string directory = Path.Combine(corpus, folder);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "case.json")));
        return new OnnxCase(directory, json.RootElement);
    }

    private static List<OnnxTensorInfo> Tensors(JsonElement root, string property) =>
        root.GetProperty(property).EnumerateArray()
            .Where(t => !(t.TryGetProperty("omitted", out var omitted) && omitted.GetBoolean()))
            .Select(t => new OnnxTensorInfo(
                t.GetProperty("name").GetString()!,
                t.GetProperty("index").GetInt32(),
                t.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray(),
                t.GetProperty("dtype").GetString()!,
                t.GetProperty("file").GetString()!))
            .ToList();

    public bool Has(string attribute) => _attributes.TryGetProperty(attribute, out _);

    public int Int(string attribute, int fallback) => _attributes.TryGetProperty(attribute, out var v) ? v.GetInt32() : fallback;

    /// <summary>A FLOAT attribute: the exact float32 value, stored as a double (README: read as double, cast to float).</summary>
    public float Float(string attribute, float fallback) => _attributes.TryGetProperty(attribute, out var v) ? (float)v.GetDouble() : fallback;

    public int[]? Ints(string attribute) =>
        _attributes.TryGetProperty(attribute, out var v) ? v.EnumerateArray().Select(e => e.GetInt32()).ToArray() : null;

    public string? String(string attribute) => _attributes.TryGetProperty(attribute, out var v) ? v.GetString() : null;

    /// <summary>The attributes as INDEX.md writes them, for messages.</summary>
    public string AttributeText => _attributes.EnumerateObject().Any()
        ? string.Join("; ", _attributes.EnumerateObject().Select(p => $"{p.Name}={p.Value.GetRawText()}"))
        : "(none)";

    /// <summary>A float32 tensor file, widened to double.</summary>
    public double[] ReadFloats(OnnxTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var bytes = File.ReadAllBytes(Path.Combine(Directory, tensor.File));
        Require(tensor, bytes.Length, 4);
        var values = new double[bytes.Length / 4];
        for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4));
        return values;
    }

    /// <summary>An int64 tensor file (MaxPool's Indices).</summary>
    public long[] ReadInt64s(OnnxTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var bytes = File.ReadAllBytes(Path.Combine(Directory, tensor.File));
        Require(tensor, bytes.Length, 8);
        var values = new long[bytes.Length / 8];
        for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(i * 8));
        return values;
    }

    private void Require(OnnxTensorInfo tensor, int length, int size)
    {
        if (length != tensor.Count * size)
        {
            throw new InvalidDataException(
                $"{Folder}/{tensor.File}: {length} bytes, but {tensor.Name} {tensor.ShapeText} {tensor.DType} needs {tensor.Count * size}");
        }
    }

    public override string ToString() => $"{Folder} ({Op}, opset {Opset}; {string.Join(" x ", Inputs.Select(i => i.ShapeText))}; {AttributeText})";
}
