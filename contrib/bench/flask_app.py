"""The benchmark's Flask app: /json answers about 4 KiB of JSON."""
from flask import Flask, jsonify

app = Flask(__name__)

ITEMS = [{"id": i, "name": "item-%03d" % i, "price": round(i * 1.25, 2),
          "tags": ["bench", "wsgi"], "in_stock": i % 3 != 0}
         for i in range(50)]


@app.route("/json")
def json_view():
        return jsonify(count=len(ITEMS), items=ITEMS)


application = app
