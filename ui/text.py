"""The app's words, in English and Spanish (one entry per language in LANGUAGES).

Static labels are translated in the browser (gr.I18n, by the browser's language); messages made
per request (result counts, errors) are chosen here from the request's Accept-Language header.
The engine's errors carry a code and parameters (`BuscadorError.code`, `.params`), which `error`
puts into the visitor's language.
"""

from __future__ import annotations

from typing import Any

from indexing.errors import BadImage, BuscadorError

# Everything the app says, one entry per language: adding a language is adding an entry here
# (its labels, messages, the engine's errors by code, and example queries).
LANGUAGES: dict[str, dict[str, Any]] = {
    "en": {
        "labels": {
            "intro": (
                "Find the most similar images in the collection: "
                "describe what you look for, or drop in a photo."
            ),
            "tab_text": "Text",
            "tab_image": "Image",
            "query": "Description",
            "query_placeholder": "e.g. a cat sleeping on a sofa",
            "examples": "Try",
            "image": "Your image (upload, webcam or paste)",
            "search": "Search",
            "top_k": "Number of results (K)",
            "min_score": "Minimum score",
            "results": "Results (best first)",
            "selected": "Selected result id",
            "more_like_this": "More like this",
            "open_photo": "Open the photo ↗",
            "play_video": "Play the video ↗",
            "tab_duplicates": "Duplicates",
            "duplicates_intro": (
                "Groups of near-duplicates in the collection (copies, re-encodings, resizes, burst "
                "shots), biggest first. Click a picture to open the original. “Only in this folder”, "
                "under Options, looks in one folder."
            ),
            "find_duplicates": "Find near-duplicates",
            "open_page": "Open its page ↗",
            "more_results": "More results",
            "image_words": "And words (optional)",
            "image_words_placeholder": "e.g. at night, in winter",
            "image_weight": "Image's share (0: words only, 1: image only)",
            "options": "Options: K, minimum score, near-duplicates, folder",
            "collapse": "Fold near-duplicates into one result",
            "within": "Only in this folder",
            "within_placeholder": "e.g. holidays/2019 (empty: the whole collection)",
            "copy_link": "🔗 Copy link",
            "json": "Results as JSON",
            "scores_note": (
                "**About scores.** The score is the cosine similarity of CLIP embeddings. Image → image "
                "scores are high (≈0.7–0.85 for close matches, 1.0 for the same picture); text → image "
                "scores are low (≈0.2–0.3 for a good match), which is normal for CLIP: compare results "
                "with each other, not with 1."
            ),
        },
        "messages": {
            "within_folders": "{folders}, or a folder in one of them (empty: the whole collection)",
            "count": "{n} results for {what}.",
            "count_one": "1 result for {what}.",
            "captioned": "{n} photos have “{words}” in their caption: [search among them]({href}).",
            "captioned_one": "1 photo has “{words}” in its caption: [see it]({href}).",
            "none": (
                "No result above the minimum score {min_score:.2f} for {what}: lower it and search again."
            ),
            "text_query": "“{q}”",
            "period_word": "taken",
            "place_word": "near",
            "videos_word": "is:video",
            "tag_word": "tag",
            "rating_word": "rating",
            "caption_word": "caption",
            "videos": "{n} videos",
            "videos_one": "1 video",
            "image_query": "your image",
            "image_and_words": "your image and “{q}”",
            "text_cut": "{what} (too long for the model: it read up to “…{end}”)",
            "like_query": "image #{id}",
            "in_folder": "{what} in {folder}",
            "link": "[🔗 Link to this search]({href})",
            "pick_first": "Click a result in the gallery first, then “More like this”.",
            "folded": "+{n} similar",
            "folded_one": "+1 similar",
            "search_first": "Search first, then ask for more results.",
            "more": "{n} more results, {total} in all.",
            "more_one": "1 more result, {total} in all.",
            "no_more": "No more results: these {total} are all there are above the minimum score.",
            "not_ready": "The search engine is not ready: {problem}",
            "login": "Buscador Visual asks for its password (any name will do).",
            "bad_image": "That file could not be used as an image: {reason}.",
            "dup_count": (
                "{groups} groups of near-duplicates (cosine ≥ {threshold}), {images} images, among {total} "
                "({seconds:.1f} s)."
            ),
            "dup_count_one": (
                "1 group of near-duplicates (cosine ≥ {threshold}), {images} images, among {total} "
                "({seconds:.1f} s)."
            ),
            "dup_none": "No near-duplicates (cosine ≥ {threshold}) among {total} images.",
            "dup_group": "Group {number} · {size} images",
            "dup_more": "… and {n} more groups: python -m indexing duplicates lists them all.",
            "dup_more_one": "… and 1 more group: python -m indexing duplicates lists them all.",
        },
        "errors": {
            "empty_query": "Type a description first, e.g. “a dog running on the beach”.",
            "no_image": "Upload, paste or take a picture first.",
            "upload_gone": "Your picture is no longer here (a picture is deleted {minutes} minutes after"
            " it was uploaded): upload it again.",
            "bad_k": "K must be a whole number from {low} to {high}, not {value!r}.",
            "bad_id": "The image id must be a whole number from {low} to {high}, not {value!r}.",
            "unknown_id": "There is no image with id {id} in this index.",
            "empty_index": "The index is empty: build it from a folder or dataset with images.",
            "empty_folder": "No image of this index is in a folder “{folder}”.",
            "empty_folder_like": (
                "No image of this index is in a folder “{folder}”. Folders of that name: {folders}."
            ),
            "bad_folder": "A folder is a text, not {value!r}.",
            "bad_min_score": "The minimum score must be a number from -1 to 1, not {value!r}.",
            "bad_threshold": (
                "The near-duplicate threshold must be a number from 0 (off) to 1, not {value!r}."
            ),
            "busy": "Many people are searching right now: try again in a moment.",
            "bad_offset": "That is as far as results go: {high} at most before the last page.",
            "bad_weight": (
                "The image weight must be a number from 0 (all text) to 1 (all image), not {value!r}."
            ),
            "negatives_only": "The query only says what to leave out: add what you are looking for.",
            "bad_period": (
                "“{period}” is not a period: write a year, month or day, or a range of them "
                "(taken:2019, taken:2019-06, taken:2019-06-15, taken:2018..2020, taken:..2015)."
            ),
            "period_backwards": "The period “{period}” ends before it starts.",
            "two_periods": (
                "The query names more than one period: give one, or a range like taken:2018..2020."
            ),
            "dates_not_read": (
                "This index does not record when its photos were taken: build it again with this "
                "version of Buscador Visual, which reads the dates from the photos."
            ),
            "no_dates": "No image of this index says when it was taken (no EXIF date), so taken: finds none.",
            "no_taken": "No image of this index was taken in {period}; its dates run from {first} to {last}.",
            "no_taken_in_folder": "No image of this index in the folder “{folder}” was taken in {period}.",
            "two_places": "The query names more than one place (near:…): give one.",
            "no_place": 'near: names no place: write near:Madrid or near:"New York".',
            "bad_radius": (
                "“{radius}” is not a distance: write one in kilometres up to {most}, as in near:Madrid~5km."
            ),
            "country_radius": "“{place}” is a country: it takes no distance (near:Madrid~5km is for towns).",
            "unknown_place": (
                "No town or country is named “{place}” (the towns known have 15,000 people or more: "
                'try the nearest one, or write near:"Town, Country").'
            ),
            "unknown_place_like": "No town or country is named “{place}”: did you mean {like}?",
            "unknown_country": (
                "No country (nor state of the US) is named “{country}”: write its name or its code "
                '(near:"London, Canada", near:London,CA, near:"Portland, OR").'
            ),
            "places_not_read": (
                "This index does not record where its photos were taken: build it again with this "
                "version of Buscador Visual, which reads the places from the photos."
            ),
            "keywords_not_read": (
                "This index does not record its photos' keywords: build it again with this version "
                "of Buscador Visual, which reads them from the photos."
            ),
            "ratings_not_read": (
                "This index does not record its photos' ratings: build it again with this version "
                "of Buscador Visual, which reads them from the photos."
            ),
            "captions_not_read": (
                "This index does not record its photos' captions: build it again with this version "
                "of Buscador Visual, which reads them from the photos."
            ),
            "no_places": (
                "No image of this index says where it was taken (no GPS position in its EXIF), so "
                "near: finds none."
            ),
            "no_near": "No image of this index was taken {where}; its photos were taken in {countries}.",
            "no_near_in_folder": "No image of this index in the folder “{folder}” was taken {where}.",
            "no_near_taken": "No image of this index taken in {period} was taken {where}.",
            "bad_kind": "“{word}” is not a kind of image: write is:video or is:photo.",
            "two_kinds": "The query asks for videos and photos at once: give one of is:video, is:photo.",
            "no_videos": "This index holds no video.",
            "no_photos": "This index holds videos alone, no photo.",
            "no_videos_among": "None of the images searched is a video.",
            "no_photos_among": "None of the images searched is a photo: they are videos.",
            "two_tags": "The query names more than one keyword (tag:…): give one.",
            "no_tag_named": 'tag: names no keyword: write tag:Ana or tag:"Ana María".',
            "no_tag": "No image of this index has the keyword “{tag}”.",
            "no_tag_among": "None of the images searched has the keyword “{tag}”.",
            "all_tagged": "Every image searched has a keyword left out ({tag}).",
            "negated_filter": (
                "{word} cannot be left out: a minus leaves out what the pictures show (-people), a "
                "keyword (-tag:Ana), a caption's words (-caption:work) or a kind (-is:video)."
            ),
            "all_captioned": "Every image searched has words left out in its caption ({words}).",
            "two_ratings": "The query names more than one rating (rating:…): give one.",
            "bad_rating": "“{word}” is not a rating: write rating:4 for the photos of 4 stars or more"
            " (1 to 5).",
            "no_ratings": "No image of this index has a rating (the stars a photo editor writes in its XMP).",
            "no_rated": "No image of this index is rated {stars} stars or more.",
            "no_rated_among": "None of the images searched is rated {stars} stars or more.",
            "two_captions": "The query names more than one caption (caption:…): give one.",
            "no_caption_named": (
                'caption: names no words: write caption:birthday or caption:"Ana\'s birthday".'
            ),
            "no_captions": (
                "No image of this index has a caption (a title or a description written in a photo "
                "editor or in Google Photos)."
            ),
            "no_captioned": "No image of this index has “{words}” in its caption.",
            "no_captioned_among": "None of the images searched has “{words}” in its caption.",
            "not_an_image": "not an image, or a format we cannot read",
            "unread_format": (
                "a file in {format} format, which is not read here (JPEG, PNG, WebP, GIF, TIFF, BMP, "
                "HEIC and AVIF are)"
            ),
            "camera_raw": "a camera RAW file, which this server cannot read: send its JPEG",
            "heic": "a HEIC photo (an iPhone's), which this server cannot read: send it as a JPEG",
            "video": "a video, which this server cannot read",
            "not_playable": "a video in a format browsers do not play",
            "corrupt_image": "corrupt or truncated image",
            "decoder_crashed": "a damaged image, which stopped our decoder: send another copy of it",
            "video_crashed": "a damaged video, which stopped our player: it cannot be played here",
            "empty_file": "empty file (0 bytes)",
            "file_too_large": "file too large ({mb} MB; the limit is {limit} MB)",
            "too_many_pixels": "image too large ({width}×{height} pixels; the limit is {limit} megapixels)",
            "too_small": "image too small ({width}×{height})",
            "file_not_found": "file not found",
            "permission_denied": "permission denied",
            "is_directory": "a folder, not a file",
            "too_many_for_duplicates": (
                "{images} images are too many to look for near-duplicates from the page (at most {limit}): "
                "use the command line, python -m indexing duplicates."
            ),
            "no_photo": (
                "This photo's original is not available here: the index was not built from a folder "
                "on this computer, or the file has moved since the last build."
            ),
        },
        # Queries that make sense for the sample collection in samples/.
        "examples": [
            "a cat",
            "a cup of coffee",
            "an astronaut",
            "a rocket launching",
            "coins on a table",
            "the surface of the moon",
        ],
    },
    "es": {
        "labels": {
            "intro": (
                "Encuentra las imágenes más parecidas de la colección: "
                "describe lo que buscas o suelta una foto."
            ),
            "tab_text": "Texto",
            "tab_image": "Imagen",
            "query": "Descripción",
            "query_placeholder": "p. ej. un gato durmiendo en un sofá",
            "examples": "Prueba",
            "image": "Tu imagen (subir, cámara o pegar)",
            "search": "Buscar",
            "top_k": "Número de resultados (K)",
            "min_score": "Puntuación mínima",
            "results": "Resultados (el mejor primero)",
            "selected": "Id del resultado elegido",
            "more_like_this": "Más como esta",
            "open_photo": "Abrir la foto ↗",
            "play_video": "Ver el vídeo ↗",
            "tab_duplicates": "Duplicados",
            "duplicates_intro": (
                "Grupos de casi duplicados de la colección (copias, recodificaciones, cambios de tamaño, "
                "ráfagas), los mayores primero. Haz clic en una imagen para abrir el original. «Solo en "
                "esta carpeta», en Opciones, busca en una carpeta."
            ),
            "find_duplicates": "Buscar casi duplicados",
            "open_page": "Abrir su página ↗",
            "more_results": "Más resultados",
            "image_words": "Y palabras (opcional)",
            "image_words_placeholder": "p. ej. de noche, en invierno",
            "image_weight": "Peso de la imagen (0: solo palabras, 1: solo imagen)",
            "options": "Opciones: K, puntuación mínima, casi duplicados, carpeta",
            "collapse": "Agrupar las casi duplicadas en un solo resultado",
            "within": "Solo en esta carpeta",
            "within_placeholder": "p. ej. vacaciones/2019 (vacío: toda la colección)",
            "copy_link": "🔗 Copiar enlace",
            "json": "Resultados en JSON",
            "scores_note": (
                "**Sobre las puntuaciones.** La puntuación es la similitud coseno de los vectores de "
                "CLIP. De imagen a imagen es alta (≈0,7–0,85 para imágenes parecidas, 1,0 para la misma "
                "foto); de texto a imagen es baja (≈0,2–0,3 para un buen resultado), y eso es normal en "
                "CLIP: compara los resultados entre sí, no con 1."
            ),
        },
        "messages": {
            "within_folders": "{folders}, o una carpeta dentro de ellas (vacío: toda la colección)",
            "count": "{n} resultados para {what}.",
            "count_one": "1 resultado para {what}.",
            "captioned": "{n} fotos tienen «{words}» en su leyenda: [buscar entre ellas]({href}).",
            "captioned_one": "1 foto tiene «{words}» en su leyenda: [verla]({href}).",
            "none": (
                "Ningún resultado supera la puntuación mínima {min_score:.2f} para {what}: "
                "bájala y busca otra vez."
            ),
            "text_query": "«{q}»",
            "period_word": "fecha",
            "place_word": "cerca",
            "videos_word": "es:vídeo",
            "tag_word": "etiqueta",
            "rating_word": "estrellas",
            "caption_word": "leyenda",
            "videos": "{n} vídeos",
            "videos_one": "1 vídeo",
            "image_query": "tu imagen",
            "image_and_words": "tu imagen y «{q}»",
            "text_cut": "{what} (demasiado larga para el modelo: leyó hasta «…{end}»)",
            "like_query": "la imagen n.º {id}",
            "in_folder": "{what} en {folder}",
            "link": "[🔗 Enlace a esta búsqueda]({href})",
            "pick_first": "Primero haz clic en un resultado de la galería y luego en «Más como esta».",
            "folded": "+{n} parecidas",
            "folded_one": "+1 parecida",
            "search_first": "Busca primero y luego pide más resultados.",
            "more": "{n} resultados más, {total} en total.",
            "more_one": "1 resultado más, {total} en total.",
            "no_more": "No hay más resultados: estos {total} son todos los que superan la puntuación mínima.",
            "not_ready": "El buscador no está listo: {problem}",
            "bad_image": "Ese archivo no sirve como imagen: {reason}.",
            "dup_count": (
                "{groups} grupos de casi duplicados (coseno ≥ {threshold}), {images} imágenes, de {total} "
                "({seconds:.1f} s)."
            ),
            "dup_count_one": (
                "1 grupo de casi duplicados (coseno ≥ {threshold}), {images} imágenes, de {total} "
                "({seconds:.1f} s)."
            ),
            "dup_none": "No hay casi duplicados (coseno ≥ {threshold}) entre {total} imágenes.",
            "dup_group": "Grupo {number} · {size} imágenes",
            "dup_more": "… y {n} grupos más: python -m indexing duplicates los lista todos.",
            "dup_more_one": "… y 1 grupo más: python -m indexing duplicates los lista todos.",
            "login": "Buscador Visual pide su contraseña (vale cualquier nombre).",
        },
        "errors": {
            "empty_query": "Escribe primero una descripción, p. ej. «un perro corriendo por la playa».",
            "no_image": "Primero sube, pega o haz una foto.",
            "upload_gone": "Tu imagen ya no está aquí (una imagen se borra {minutes} minutos después de"
            " subirla): vuelve a subirla.",
            "bad_k": "K debe ser un número entero de {low} a {high}, no {value!r}.",
            "bad_id": "El id de la imagen debe ser un número entero de {low} a {high}, no {value!r}.",
            "unknown_id": "No hay ninguna imagen con id {id} en este índice.",
            "empty_index": "El índice está vacío: créalo a partir de una carpeta o un dataset con imágenes.",
            "empty_folder": "Ninguna imagen de este índice está en una carpeta «{folder}».",
            "empty_folder_like": (
                "Ninguna imagen de este índice está en una carpeta «{folder}». Carpetas con ese "
                "nombre: {folders}."
            ),
            "bad_folder": "Una carpeta es un texto, no {value!r}.",
            "bad_min_score": "La puntuación mínima debe ser un número de -1 a 1, no {value!r}.",
            "bad_threshold": (
                "El umbral de casi duplicados debe ser un número de 0 (desactivado) a 1, no {value!r}."
            ),
            "busy": "Ahora mismo hay mucha gente buscando: inténtalo de nuevo en un momento.",
            "bad_offset": "Hasta aquí llegan los resultados: como mucho {high} antes de la última página.",
            "bad_weight": (
                "El peso de la imagen debe ser un número de 0 (solo texto) a 1 (solo imagen), no {value!r}."
            ),
            "negatives_only": "La consulta solo dice qué dejar fuera: añade lo que buscas.",
            "bad_period": (
                "«{period}» no es un periodo: escribe un año, un mes o un día, o un intervalo "
                "(fecha:2019, fecha:2019-06, fecha:2019-06-15, fecha:2018..2020, fecha:..2015)."
            ),
            "period_backwards": "El periodo «{period}» termina antes de empezar.",
            "two_periods": (
                "La consulta nombra más de un periodo: da uno, o un intervalo como fecha:2018..2020."
            ),
            "dates_not_read": (
                "Este índice no guarda cuándo se hicieron sus fotos: vuelve a crearlo con esta versión "
                "de Buscador Visual, que lee las fechas de las fotos."
            ),
            "no_dates": (
                "Ninguna imagen de este índice dice cuándo se hizo (sin fecha EXIF): fecha: no "
                "encuentra ninguna."
            ),
            "no_taken": (
                "Ninguna imagen de este índice se hizo en {period}; sus fechas van del {first} al {last}."
            ),
            "no_taken_in_folder": (
                "Ninguna imagen de este índice en la carpeta «{folder}» se hizo en {period}."
            ),
            "two_places": "La consulta nombra más de un lugar (cerca:…): da uno.",
            "no_place": 'cerca: no nombra ningún lugar: escribe cerca:Madrid o cerca:"Nueva York".',
            "bad_radius": (
                "«{radius}» no es una distancia: escribe una en kilómetros, hasta {most}, como en "
                "cerca:Madrid~5km."
            ),
            "country_radius": (
                "«{place}» es un país: no lleva distancia (cerca:Madrid~5km es para pueblos y ciudades)."
            ),
            "unknown_place_like": (
                "Ningún pueblo, ciudad o país se llama «{place}»: ¿quisiste decir {like_es}?"
            ),
            "unknown_place": (
                "Ningún pueblo, ciudad o país se llama «{place}» (se conocen los de 15.000 habitantes "
                'o más: prueba con el más cercano, o escribe cerca:"Ciudad, País"; los países, '
                "por su nombre, España o Spain, o su código, ES)."
            ),
            "unknown_country": (
                "Ningún país (ni estado de EE. UU.) se llama «{country}»: escribe su nombre o su código "
                '(cerca:"Córdoba, España", cerca:Córdoba,ES, cerca:"Portland, OR").'
            ),
            "places_not_read": (
                "Este índice no guarda dónde se hicieron sus fotos: vuelve a crearlo con esta versión "
                "de Buscador Visual, que lee los lugares de las fotos."
            ),
            "keywords_not_read": (
                "Este índice no guarda las etiquetas de sus fotos: vuelve a crearlo con esta versión "
                "de Buscador Visual, que las lee de las fotos."
            ),
            "ratings_not_read": (
                "Este índice no guarda las valoraciones de sus fotos: vuelve a crearlo con esta "
                "versión de Buscador Visual, que las lee de las fotos."
            ),
            "captions_not_read": (
                "Este índice no guarda las leyendas de sus fotos: vuelve a crearlo con esta versión "
                "de Buscador Visual, que las lee de las fotos."
            ),
            "no_places": (
                "Ninguna imagen de este índice dice dónde se hizo (sin posición GPS en su EXIF): "
                "cerca: no encuentra ninguna."
            ),
            "no_near": (
                "Ninguna imagen de este índice se hizo {where_es}; sus fotos se hicieron en {countries_es}."
            ),
            "no_near_in_folder": (
                "Ninguna imagen de este índice en la carpeta «{folder}» se hizo {where_es}."
            ),
            "no_near_taken": "Ninguna imagen de este índice hecha en {period} se hizo {where_es}.",
            "bad_kind": "«{word}» no es un tipo de imagen: escribe es:vídeo o es:foto.",
            "two_kinds": "La búsqueda pide vídeos y fotos a la vez: pon uno de es:vídeo, es:foto.",
            "no_videos": "Este índice no tiene ningún vídeo.",
            "no_photos": "Este índice solo tiene vídeos, ninguna foto.",
            "no_videos_among": "Ninguna de las imágenes buscadas es un vídeo.",
            "no_photos_among": "Ninguna de las imágenes buscadas es una foto: son vídeos.",
            "two_tags": "La búsqueda nombra más de una etiqueta (etiqueta:…): pon una.",
            "no_tag_named": 'etiqueta: no nombra ninguna: escribe etiqueta:Ana o etiqueta:"Ana María".',
            "no_tag": "Ninguna imagen de este índice tiene la etiqueta «{tag}».",
            "no_tag_among": "Ninguna de las imágenes buscadas tiene la etiqueta «{tag}».",
            "all_tagged": "Todas las imágenes buscadas tienen una etiqueta excluida ({tag}).",
            "negated_filter": (
                "{word} no se puede excluir: el signo menos excluye lo que muestran las imágenes "
                "(-gente), una etiqueta (-etiqueta:Ana), palabras de una leyenda (-leyenda:trabajo) o "
                "un tipo (-es:vídeo)."
            ),
            "all_captioned": "Todas las imágenes buscadas tienen en su leyenda palabras excluidas ({words}).",
            "two_ratings": "La búsqueda nombra más de una valoración (estrellas:…): pon una.",
            "bad_rating": "«{word}» no es una valoración: escribe estrellas:4 para las fotos de 4"
            " estrellas o más (1 a 5).",
            "no_ratings": "Ninguna imagen de este índice tiene valoración (las estrellas que un editor"
            " de fotos escribe en su XMP).",
            "no_rated": "Ninguna imagen de este índice tiene {stars} estrellas o más.",
            "no_rated_among": "Ninguna de las imágenes buscadas tiene {stars} estrellas o más.",
            "two_captions": "La búsqueda nombra más de una leyenda (leyenda:…): pon una.",
            "no_caption_named": (
                "leyenda: no nombra ninguna palabra: escribe leyenda:cumpleaños o "
                'leyenda:"cumpleaños de Ana".'
            ),
            "no_captions": (
                "Ninguna imagen de este índice tiene leyenda (un título o una descripción escritos en "
                "un editor de fotos o en Google Fotos)."
            ),
            "no_captioned": "Ninguna imagen de este índice tiene «{words}» en su leyenda.",
            "no_captioned_among": "Ninguna de las imágenes buscadas tiene «{words}» en su leyenda.",
            "not_an_image": "no es una imagen, o tiene un formato que no sabemos leer",
            "unread_format": (
                "un archivo en formato {format}, que aquí no se lee (sí JPEG, PNG, WebP, GIF, TIFF, "
                "BMP, HEIC y AVIF)"
            ),
            "camera_raw": "un archivo RAW de cámara, que este servidor no sabe leer: envía su JPEG",
            "heic": "una foto HEIC (de iPhone), que este servidor no sabe leer: envíala como JPEG",
            "video": "un vídeo, que este servidor no sabe leer",
            "not_playable": "un vídeo en un formato que los navegadores no reproducen",
            "corrupt_image": "la imagen está dañada o incompleta",
            "decoder_crashed": "una imagen dañada, que detuvo nuestro decodificador: envía otra copia",
            "video_crashed": "un vídeo dañado, que detuvo nuestro reproductor: no se puede reproducir aquí",
            "empty_file": "el archivo está vacío (0 bytes)",
            "file_too_large": "archivo demasiado grande ({mb} MB; el límite es {limit} MB)",
            "too_many_pixels": (
                "imagen demasiado grande ({width}×{height} píxeles; el límite es {limit} megapíxeles)"
            ),
            "too_small": "imagen demasiado pequeña ({width}×{height})",
            "file_not_found": "no se encuentra el archivo",
            "permission_denied": "permiso denegado",
            "is_directory": "es una carpeta, no un archivo",
            "too_many_for_duplicates": (
                "{images} imágenes son demasiadas para buscar casi duplicados desde la página (como mucho "
                "{limit}): usa la línea de órdenes, python -m indexing duplicates."
            ),
            "no_photo": (
                "El original de esta foto no está disponible aquí: el índice no se creó a partir de "
                "una carpeta de este ordenador, o el archivo se ha movido desde la última indexación."
            ),
        },
        # Queries that make sense for the sample collection in samples/.
        "examples": [
            "un gato",
            "una taza de café",
            "un astronauta",
            "un cohete despegando",
            "monedas sobre una mesa",
            "la superficie de la luna",
        ],
    },
}
DEFAULT = "en"


def labels() -> dict[str, dict[str, str]]:
    """Every language's static labels, for gr.I18n."""
    return {lang: words["labels"] for lang, words in LANGUAGES.items()}


def login() -> str:
    """What the password page says, in every language we speak (it knows no visitor's language)."""
    return " · ".join(words["messages"]["login"] for words in LANGUAGES.values())


def examples(lang: str) -> list[str]:
    return LANGUAGES.get(lang, LANGUAGES[DEFAULT])["examples"]


def language(accept_language: str | None) -> str:
    """The first language of the browser's Accept-Language that we speak, else English."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower().split("-")[0]
        if tag in LANGUAGES:
            return tag
    return DEFAULT


def message(lang: str, key: str, **values: object) -> str:
    """The app's message `key` in `lang` (English for a language we do not speak); for a count `n`
    of 1, its `key_one` where the language has one ("1 result", not "1 results")."""
    messages = LANGUAGES.get(lang, LANGUAGES[DEFAULT])["messages"]
    return messages.get(f"{key}_one" if values.get("n") == 1 else key, messages[key]).format(**values)


def error(lang: str, exc: BuscadorError) -> str:
    """An engine error in `lang`, from its code and parameters; its own message for unknown codes."""
    template = LANGUAGES.get(lang, LANGUAGES[DEFAULT])["errors"].get(exc.code)
    text = template.format(**exc.params) if template else str(exc)
    return message(lang, "bad_image", reason=text) if isinstance(exc, BadImage) else text
